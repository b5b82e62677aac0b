/**
 * The relay continues its callers' traces: a plain grpc-js client sends
 * `traceparent` and `tracestate` through the relay, and a plain grpc-js
 * upstream reads what arrives. Same trace id, a new parent span id (the
 * relay's client span), the same tracestate, for all four call kinds; and
 * once more through the real `pnpm relay` process.
 */
import { assert, describe, it } from "@effect/vitest"
import { GrpcServer } from "@fiber-grpc/grpc"
import { EchoClient, type EchoRequest, type EchoResponse, EchoService } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Layer } from "effect"
import * as Relay from "../src/Relay.js"
import { startRelayProcess } from "./cli.js"

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const callerSpanId = "00f067aa0ba902b7"

/** A plain grpc-js upstream that answers every kind at once and records the metadata it received. */
const recordingUpstream = Effect.gen(function*() {
  const received = new Map<string, grpc.Metadata>()
  const server = new grpc.Server()
  server.addService(EchoService, {
    unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      received.set("unary", call.metadata)
      callback(null, { message: "up" })
    },
    serverStreamingEcho: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      received.set("serverStreaming", call.metadata)
      call.write({ message: "up" })
      call.end()
    },
    clientStreamingEcho: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      received.set("clientStreaming", call.metadata)
      call.on("data", () => {})
      call.on("end", () => callback(null, { message: "up" }))
    },
    bidirectionalStreamingEcho: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      received.set("bidi", call.metadata)
      call.on("data", (m: EchoRequest) => call.write(m))
      call.on("end", () => call.end())
    }
  })
  const port = yield* Effect.acquireRelease(
    Effect.callback<number>((resume) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        resume(e ? Effect.die(e) : Effect.succeed(p)))
    ),
    () => Effect.sync(() => server.forceShutdown())
  )
  return { port, received }
})

const traced = () => {
  const metadata = new grpc.Metadata()
  metadata.set("traceparent", `00-${traceId}-${callerSpanId}-01`)
  metadata.set("tracestate", "vendor=abc")
  return metadata
}

/** Makes one call of `kind` and waits for its status. */
const call = (client: EchoClient, kind: string) =>
  Effect.callback<grpc.status>((resume) => {
    const done = (status: grpc.StatusObject) => resume(Effect.succeed(status.code))
    if (kind === "unary") {
      client.unaryEcho({ message: "x" }, traced(), () => {}).on("status", done)
    } else if (kind === "serverStreaming") {
      client.serverStreamingEcho({ message: "x" }, traced()).on("data", () => {}).on("error", () => {}).on("status", done)
    } else if (kind === "clientStreaming") {
      const c = client.clientStreamingEcho(traced(), () => {})
      c.on("status", done)
      c.write({ message: "x" })
      c.end()
    } else {
      const c = client.bidirectionalStreamingEcho(traced())
      c.on("data", () => {}).on("error", () => {}).on("status", done)
      c.write({ message: "x" })
      c.end()
    }
  })

const assertContinued = (metadata: grpc.Metadata | undefined, kind: string) => {
  assert.isDefined(metadata, `${kind} reached the upstream`)
  const [traceparent] = metadata!.get("traceparent") as Array<string>
  const [version, upstreamTrace, upstreamParent, flags] = traceparent!.split("-")
  assert.strictEqual(version, "00")
  assert.strictEqual(upstreamTrace, traceId, `${kind}: same trace id`)
  assert.match(upstreamParent!, /^[0-9a-f]{16}$/)
  assert.notStrictEqual(upstreamParent, callerSpanId, `${kind}: a new parent span id`)
  assert.strictEqual(flags, "01")
  assert.deepStrictEqual(metadata!.get("tracestate"), ["vendor=abc"], `${kind}: tracestate forwarded`)
}

const kinds = ["unary", "serverStreaming", "clientStreaming", "bidi"]

describe("relay: trace context", () => {
  it.effect("continues the caller's trace upstream for all four kinds", () =>
    Effect.gen(function*() {
      const upstream = yield* recordingUpstream
      const context = yield* Layer.build(Relay.layer(`127.0.0.1:${upstream.port}`).pipe(Layer.provideMerge(GrpcServer.layerTest)))
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new EchoClient(`127.0.0.1:${Context.get(context, GrpcServer.GrpcServer).port}`, grpc.credentials.createInsecure())),
        (c) => Effect.sync(() => c.close())
      )
      for (const kind of kinds) {
        assert.strictEqual(yield* call(client, kind), grpc.status.OK)
        assertContinued(upstream.received.get(kind), kind)
      }
      // Each call has its own relay span.
      const parents = kinds.map((k) => (upstream.received.get(k)!.get("traceparent")[0] as string).split("-")[2])
      assert.strictEqual(new Set(parents).size, 4)
    }))

  it.live("through the `pnpm relay` process, for unary and streaming calls", () =>
    Effect.gen(function*() {
      const upstream = yield* recordingUpstream
      const { client } = yield* startRelayProcess(["--upstream", `127.0.0.1:${upstream.port}`])
      for (const kind of ["unary", "serverStreaming", "bidi"]) {
        assert.strictEqual(yield* call(client, kind), grpc.status.OK)
        assertContinued(upstream.received.get(kind), kind)
      }
    }))
})
