/**
 * The auth example over real HTTP/2: the client middleware attaches the
 * refreshed token; plain grpc-js clients without a valid token get
 * UNAUTHENTICATED before the server decodes their request, which a request
 * body that is not valid protobuf proves from the outside.
 */
import { assert, describe, it } from "@effect/vitest"
import { GrpcClient, GrpcServer } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Layer, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Auth from "../src/Auth.js"

const startServer = Effect.map(
  Layer.build(
    Auth.EchoService.pipe(
      Layer.provide(Auth.tokensFrom({ "alice-token": "alice", "bob-token": "bob" })),
      Layer.provideMerge(GrpcServer.layerTest)
    )
  ),
  (context) => Context.get(context, GrpcServer.GrpcServer).port
)

/** A plain grpc-js unary call whose request body is `body`, raw bytes. */
const rawUnary = (port: number, body: Buffer, authorization?: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (client) =>
      Effect.callback<grpc.StatusObject>((resume) => {
        const metadata = new grpc.Metadata()
        if (authorization !== undefined) metadata.set("authorization", authorization)
        const call = client.makeUnaryRequest(
          "/grpc.examples.echo.Echo/UnaryEcho",
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          metadata,
          () => {}
        )
        call.on("status", (status) => resume(Effect.succeed(status)))
      }),
    (client) => Effect.sync(() => client.close())
  )

/** Not a protobuf message: a varint that never ends. */
const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])

describe("examples/auth", () => {
  it.effect("the client middleware attaches the current token; handlers see CurrentUser (all four kinds)", () =>
    Effect.gen(function*() {
      const port = yield* startServer
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
      const echo = yield* GrpcClient.make(EchoDefinition, { middleware: [Auth.bearer] }).pipe(
        Effect.provideService(GrpcClient.GrpcChannel, channel)
      )
      assert.strictEqual((yield* echo.unaryEcho({ message: "hi" })).message, "alice: hi")
      const streamed = yield* Stream.runCollect(echo.serverStreamingEcho({ message: "s" }))
      assert.deepStrictEqual(streamed.map((r) => r.message), ["alice: s"])
      const summed = yield* echo.clientStreamingEcho(Stream.make({ message: "a" }, { message: "b" }))
      assert.strictEqual(summed.message, "alice: a,b")
      const bidi = yield* Stream.runCollect(echo.bidirectionalStreamingEcho(Stream.make({ message: "x" })))
      assert.deepStrictEqual(bidi.map((r) => r.message), ["alice: x"])
    }).pipe(Effect.provide(Auth.refreshingTokens(Effect.succeed("alice-token"), "10 minutes"))))

  it.effect("a refreshed token is used by the next call", () =>
    Effect.gen(function*() {
      const port = yield* startServer
      const issued = yield* Ref.make(["alice-token", "bob-token"])
      const fetch = Ref.modify(issued, (all) => [all[0]!, all.length > 1 ? all.slice(1) : all] as const)
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
      const tokens = yield* Layer.build(Auth.refreshingTokens(fetch, "10 minutes"))
      const echo = yield* GrpcClient.make(EchoDefinition, { middleware: [Auth.bearer] }).pipe(
        Effect.provideService(GrpcClient.GrpcChannel, channel),
        Effect.provideContext(tokens)
      )
      assert.strictEqual((yield* echo.unaryEcho({ message: "1" })).message, "alice: 1")
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* echo.unaryEcho({ message: "2" })).message, "bob: 2")
    }))

  it.effect("rejects a missing or bad token with UNAUTHENTICATED before decoding the request", () =>
    Effect.gen(function*() {
      const port = yield* startServer
      const missing = yield* rawUnary(port, garbage)
      assert.strictEqual(missing.code, grpc.status.UNAUTHENTICATED)
      assert.strictEqual(missing.details, "missing bearer token")
      const bad = yield* rawUnary(port, garbage, "Bearer stolen")
      assert.strictEqual(bad.code, grpc.status.UNAUTHENTICATED)
      assert.strictEqual(bad.details, "invalid token")
      // The same bytes with a valid token get as far as decoding, which fails.
      const decoded = yield* rawUnary(port, garbage, "Bearer alice-token")
      assert.strictEqual(decoded.code, grpc.status.INTERNAL)
      assert.strictEqual(decoded.details, "Error deserializing request")
    }))
})
