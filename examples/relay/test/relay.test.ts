import { assert, describe, it } from "@effect/vitest"
import { type CallContext, GrpcServer } from "@fiber-grpc/grpc"
import {
  EchoClient,
  type EchoRequest,
  type EchoResponse,
  EchoService
} from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Deferred, Effect, Exit, Layer } from "effect"
import * as Relay from "../src/Relay.js"
import { startRelayProcess } from "./cli.js"

/**
 * A slow upstream written with plain grpc-js: it never answers (but for
 * `warmUp`), and reports each call's arrival (deadline, and when it saw it)
 * and cancellation.
 */
const slowUpstream = Effect.gen(function*() {
  const arrived = yield* Deferred.make<{ method: string; deadline: number; at: number }>()
  const cancelled = yield* Deferred.make<string>()
  const watch = (method: string) => (call: CallContext.ServerCall) => {
    const deadline = call.getDeadline()
    const at = Date.now()
    Deferred.doneUnsafe(arrived, Exit.succeed({ method, deadline: deadline instanceof Date ? deadline.getTime() : deadline, at }))
    call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.succeed(method)))
  }
  const server = new grpc.Server()
  server.addService(EchoService, {
    unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) =>
      call.request.message === warmUpMessage ? callback(null, { message: "warm" }) : watch("unary")(call),
    serverStreamingEcho: watch("serverStreaming"),
    clientStreamingEcho: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>) => {
      watch("clientStreaming")(call)
      call.resume()
    },
    bidirectionalStreamingEcho: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      watch("bidi")(call)
      call.resume()
    }
  })
  const port = yield* Effect.acquireRelease(
    Effect.callback<number>((resume) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        resume(e ? Effect.die(e) : Effect.succeed(p)))
    ),
    () => Effect.sync(() => server.forceShutdown())
  )
  return { port, arrived, cancelled }
})

const warmUpMessage = "warm-up"

/** One answered unary call through the relay: both connections (client -> relay -> upstream) are then up. */
const warmUp = (client: EchoClient) =>
  Effect.callback<void>((resume) => {
    client.unaryEcho({ message: warmUpMessage }, () => resume(Effect.void))
  })

const startRelay = (upstreamPort: number) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Relay.layer(`127.0.0.1:${upstreamPort}`).pipe(Layer.provideMerge(GrpcServer.layerTest))
    )
    const port = Context.get(context, GrpcServer.GrpcServer).port
    return yield* Effect.acquireRelease(
      Effect.sync(() => new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
      (c) => Effect.sync(() => c.close())
    )
  })

const kinds: ReadonlyArray<{ name: string; start: (client: EchoClient, deadline?: Date) => { cancel(): void } }> = [
  {
    name: "unary",
    start: (c, deadline) => c.unaryEcho({ message: "x" }, new grpc.Metadata(), deadline ? { deadline } : {}, () => {})
  },
  {
    name: "serverStreaming",
    start: (c, deadline) => c.serverStreamingEcho({ message: "x" }, deadline ? { deadline } : {}).on("error", () => {})
  },
  {
    name: "clientStreaming",
    start: (c, deadline) => {
      const call = c.clientStreamingEcho(new grpc.Metadata(), deadline ? { deadline } : {}, () => {})
      call.write({ message: "x" })
      return call
    }
  },
  {
    name: "bidi",
    start: (c, deadline) => {
      const call = c.bidirectionalStreamingEcho(deadline ? { deadline } : {}).on("error", () => {})
      call.write({ message: "x" })
      return call
    }
  }
]

describe("relay: a plain grpc-js client -> relay -> a plain grpc-js slow upstream", () => {
  for (const kind of kinds) {
    it.effect(`${kind.name}: the client's cancel reaches the upstream`, () =>
      Effect.gen(function*() {
        const upstream = yield* slowUpstream
        const client = yield* startRelay(upstream.port)
        const call = kind.start(client)
        assert.strictEqual((yield* Deferred.await(upstream.arrived)).method, kind.name)
        call.cancel()
        assert.strictEqual(yield* Deferred.await(upstream.cancelled), kind.name)
      }))

    it.effect(`${kind.name}: the client's deadline reaches the upstream`, () =>
      Effect.gen(function*() {
        const upstream = yield* slowUpstream
        const client = yield* startRelay(upstream.port)
        // Connected first, so that the call surely reaches the upstream within its second.
        yield* warmUp(client)
        const sentAfter = Date.now()
        const deadline = new Date(sentAfter + 1000)
        kind.start(client, deadline)
        const arrived = yield* Deferred.await(upstream.arrived)
        // The upstream's deadline is the client's, moved later only by the
        // transit of both hops (each grpc-timeout is the time left when the
        // call leaves): never earlier, and no later than that transit.
        assert.isAtLeast(arrived.deadline, deadline.getTime())
        assert.isAtMost(arrived.deadline, deadline.getTime() + (arrived.at - sentAfter))
        // and the upstream call ends when the deadline passes
        assert.strictEqual(yield* Deferred.await(upstream.cancelled), kind.name)
      }))
  }
})

describe("relay: the command line contract", () => {
  it.live("prints `listening on <port>`, relays, and exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const upstream = yield* slowUpstream
      const { client, terminate } = yield* startRelayProcess(["--upstream", `127.0.0.1:${upstream.port}`])
      const call = client.unaryEcho({ message: "via cli" }, () => {})
      assert.strictEqual((yield* Deferred.await(upstream.arrived)).method, "unary")
      call.cancel()
      yield* Deferred.await(upstream.cancelled)
      assert.strictEqual(yield* terminate, 0)
    }))
})
