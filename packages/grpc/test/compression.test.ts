/**
 * Compression, observed on the wire with raw node:http2 peers: what a
 * channel's `compression` sends, what our server accepts, and the two things
 * grpc-js cannot do (pinned, so an upgrade that changes them shows up here).
 */
import { assert, describe, it } from "@effect/vitest"
import { EchoDefinition, EchoRequest, EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Effect, Exit, Queue, Scope, Stream } from "effect"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import * as zlib from "node:zlib"
import { CallContext, GrpcClient, GrpcError } from "../src/index.js"
import { startEcho } from "./helpers.js"

/** One gRPC length-prefixed message. */
const frame = (bytes: Uint8Array, compressed = false) => {
  const out = Buffer.alloc(5 + bytes.length)
  out[0] = compressed ? 1 : 0
  out.writeUInt32BE(bytes.length, 1)
  Buffer.from(bytes).copy(out, 5)
  return out
}

interface Received {
  readonly headers: http2.IncomingHttpHeaders
  readonly body: Buffer
}

/** A raw HTTP/2 gRPC server that records each request and answers one empty EchoResponse. */
const recordingServer = Effect.acquireRelease(
  Effect.gen(function*() {
    const requests = yield* Queue.unbounded<Received>()
    const server = http2.createServer()
    server.on("stream", (stream, headers) => {
      const chunks: Array<Buffer> = []
      stream.on("data", (c: Buffer) => chunks.push(c))
      stream.on("end", () => {
        Queue.offerUnsafe(requests, { headers, body: Buffer.concat(chunks) })
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
        stream.end(frame(EchoResponse.encode({ message: "" }).finish()))
      })
    })
    const port = yield* Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    })
    return { server, port, received: Queue.take(requests) }
  }),
  ({ server }) => Effect.sync(() => server.close())
)

const message = "compress me ".repeat(100)

describe("compression", () => {
  for (const algorithm of ["gzip", "deflate"] as const) {
    it.effect(`a channel with compression "${algorithm}" sends compressed request messages`, () =>
      Effect.gen(function*() {
        const peer = yield* recordingServer
        const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${peer.port}`, { compression: algorithm })
        yield* GrpcClient.makeWith(channel, EchoDefinition).unaryEcho({ message })
        const { headers, body } = yield* peer.received
        assert.strictEqual(headers["grpc-encoding"], algorithm)
        assert.strictEqual(body[0], 1, "compressed flag")
        const payload = body.subarray(5, 5 + body.readUInt32BE(1))
        assert.isBelow(payload.length, message.length / 4)
        // gRPC's "deflate" is the zlib format.
        const plain = algorithm === "gzip" ? zlib.gunzipSync(payload) : zlib.inflateSync(payload)
        assert.strictEqual(EchoRequest.decode(plain).message, message)
      }))
  }

  it.effect("without compression, requests are sent plain", () =>
    Effect.gen(function*() {
      const peer = yield* recordingServer
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${peer.port}`)
      yield* GrpcClient.makeWith(channel, EchoDefinition).unaryEcho({ message })
      const { headers, body } = yield* peer.received
      assert.isUndefined(headers["grpc-encoding"])
      assert.strictEqual(body[0], 0)
    }))

  it.effect("a call's compression option overrides the channel's, for every call kind, through a second connection closed with the channel", () =>
    Effect.gen(function*() {
      const peer = yield* recordingServer
      const encodingOf = (r: Received) => [r.headers["grpc-encoding"] ?? "identity", r.body[0]]
      const scope = yield* Scope.make()
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${peer.port}`).pipe(Scope.provide(scope))
      const echo = GrpcClient.makeWith(channel, EchoDefinition)
      yield* echo.unaryEcho({ message })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["identity", 0])
      yield* echo.unaryEcho({ message }, { compression: "gzip" })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["gzip", 1])
      yield* echo.unaryEcho({ message }, { compression: "deflate" })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["deflate", 1])
      yield* Stream.runDrain(echo.serverStreamingEcho({ message }, { compression: "gzip" }))
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["gzip", 1])
      yield* echo.clientStreamingEcho(Stream.make({ message }), { compression: "gzip" })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["gzip", 1])
      yield* echo.unaryEcho({ message })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["identity", 0])

      // On a gzip channel, "identity" on a call turns compression off for it.
      const gzipChannel = yield* GrpcClient.makeChannel(`127.0.0.1:${peer.port}`, { compression: "gzip" })
      yield* GrpcClient.makeWith(gzipChannel, EchoDefinition).unaryEcho({ message }, { compression: "identity" })
      assert.deepStrictEqual(encodingOf(yield* peer.received), ["identity", 0])

      // Closing the channel closes the second connection too.
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(echo.unaryEcho({ message }, { compression: "gzip" }))
      assert.strictEqual(error.code, GrpcError.Status.UNAVAILABLE)
    }))

  it.effect("a call's compression option on a GrpcChannel not made by makeChannel fails the call with FAILED_PRECONDITION", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({ unaryEcho: Effect.succeed, serverStreamingEcho: (r) => Stream.make(r) })
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
        (client) => Effect.sync(() => client.close())
      )
      const channel = GrpcClient.GrpcChannel.of({ target: `127.0.0.1:${server.port}`, client })
      const echo = GrpcClient.makeWith(channel, EchoDefinition)
      // Building the call does not throw; running it fails.
      const unary = echo.unaryEcho({ message }, { compression: "gzip" })
      const error = yield* Effect.flip(unary)
      assert.strictEqual(error.code, GrpcError.Status.FAILED_PRECONDITION)
      assert.include(error.message, "makeChannel")
      const streamed = yield* Effect.flip(Stream.runDrain(echo.serverStreamingEcho({ message }, { compression: "gzip" })))
      assert.strictEqual(streamed.code, GrpcError.Status.FAILED_PRECONDITION)
      // Without the option the channel works.
      assert.deepStrictEqual(yield* echo.unaryEcho({ message }), { message })
    }))

  it.effect("our server accepts gzip and deflate requests; grpc-js hides from the handler that they were compressed", () =>
    Effect.gen(function*() {
      const seen: Array<ReadonlyArray<unknown>> = []
      const { server } = yield* startEcho({
        unaryEcho: (request) =>
          CallContext.CallContext.use((ctx) => {
            seen.push(ctx.metadata.get("grpc-encoding"))
            return Effect.succeed(request)
          })
      })
      for (const compression of ["gzip", "deflate", "identity"] as const) {
        const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${server.port}`, { compression })
        const reply = yield* GrpcClient.makeWith(channel, EchoDefinition).unaryEcho({ message })
        assert.strictEqual(reply.message, message)
      }
      // grpc-js removes grpc-encoding before the handler sees the metadata.
      assert.deepStrictEqual(seen, [[], [], []])
    }))

  it.effect("grpc-js servers never compress responses, even asked to (grpc.default_compression_algorithm) by a client that accepts gzip", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({ unaryEcho: Effect.succeed }, {
        serverOptions: { "grpc.default_compression_algorithm": 2 }
      })
      const response = yield* Effect.acquireUseRelease(
        Effect.sync(() => http2.connect(`http://127.0.0.1:${server.port}`)),
        (session) =>
          Effect.callback<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resume) => {
            const stream = session.request({
              ":method": "POST",
              ":path": "/grpc.examples.echo.Echo/UnaryEcho",
              "content-type": "application/grpc",
              te: "trailers",
              "grpc-accept-encoding": "gzip,deflate,identity"
            })
            let headers: http2.IncomingHttpHeaders = {}
            const chunks: Array<Buffer> = []
            stream.on("response", (h) => (headers = h))
            stream.on("data", (c: Buffer) => chunks.push(c))
            stream.on("end", () => resume(Effect.succeed({ headers, body: Buffer.concat(chunks) })))
            stream.end(frame(EchoRequest.encode({ message }).finish()))
          }),
        (session) => Effect.sync(() => session.close())
      )
      assert.include([undefined, "identity"], response.headers["grpc-encoding"])
      assert.strictEqual(response.body[0], 0, "compressed flag")
      assert.strictEqual(EchoResponse.decode(response.body.subarray(5)).message, message)
    }))
})
