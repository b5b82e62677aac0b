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
 * A slow upstream written with plain grpc-js: it never answers, and reports
 * each call's arrival, deadline and cancellation.
 */
const slowUpstream = Effect.gen(function*() {
  const arrived = yield* Deferred.make<{ method: string; deadline: number }>()
  const cancelled = yield* Deferred.make<string>()
  const watch = (method: string) => (call: CallContext.ServerCall) => {
    const deadline = call.getDeadline()
    Deferred.doneUnsafe(arrived, Exit.succeed({ method, deadline: deadline instanceof Date ? deadline.getTime() : deadline }))
    call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.succeed(method)))
  }
  const server = new grpc.Server()
  server.addService(EchoService, {
    unaryEcho: watch("unary"),
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
        const deadline = new Date(Date.now() + 400)
        kind.start(client, deadline)
        const arrived = yield* Deferred.await(upstream.arrived)
        assert.isAtMost(Math.abs(arrived.deadline - deadline.getTime()), 50)
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
