/**
 * `pnpm auth`: serves the authenticated Echo and calls it three ways: with
 * the client middleware attaching a refreshed token, with a bad token, and
 * with none. The last two end with UNAUTHENTICATED before the server decodes
 * their request.
 */
import { NodeRuntime } from "@effect/platform-node"
import { GrpcClient, GrpcServer } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Console, Effect, Layer, Stream } from "effect"
import * as Auth from "./Auth.js"

const program = Effect.gen(function*() {
  const port = yield* GrpcServer.port
  const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
  const withToken = yield* GrpcClient.make(EchoDefinition, { middleware: [Auth.bearer] }).pipe(
    Effect.provideService(GrpcClient.GrpcChannel, channel)
  )
  const plain = GrpcClient.makeWith(channel, EchoDefinition)

  const reply = yield* withToken.unaryEcho({ message: "hello" })
  yield* Console.log(`with a token:    ${reply.message}`)
  const streamed = yield* Stream.runCollect(withToken.bidirectionalStreamingEcho(Stream.make({ message: "a" }, { message: "b" })))
  yield* Console.log(`bidi:            ${streamed.map((r) => r.message).join(" | ")}`)

  const bad = new grpc.Metadata()
  bad.set("authorization", "Bearer stolen")
  const rejected = yield* Effect.flip(plain.unaryEcho({ message: "hello" }, { metadata: bad }))
  yield* Console.log(`with a bad one:  ${rejected.codeName} ${rejected.message}`)
  const missing = yield* Effect.flip(plain.unaryEcho({ message: "hello" }))
  yield* Console.log(`with none:       ${missing.codeName} ${missing.message}`)
})

// The client side's token would come from an identity provider; here it is fixed.
const fetchToken = Effect.succeed("alice-token")

program.pipe(
  Effect.provide(Layer.mergeAll(
    Auth.EchoService.pipe(Layer.provide(Auth.tokensFrom({ "alice-token": "alice" }))),
    Auth.refreshingTokens(fetchToken, "10 minutes")
  ).pipe(Layer.provideMerge(GrpcServer.layer({ host: "127.0.0.1", port: 0 })))),
  Effect.scoped,
  NodeRuntime.runMain
)
