/**
 * Client middleware over real HTTP/2, against a plain @grpc/grpc-js server:
 * metadata from an Effect service on all four call kinds, status and trailers
 * observed, and deadline propagation from a handler still in force.
 */
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { EchoDefinition, type EchoRequest, type EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Effect, Layer, Ref, Schedule, Stream } from "effect"
import { GrpcClient, GrpcError, GrpcMiddleware, GrpcServer } from "../src/index.js"
import { echoDefaults, rawServer, startEcho } from "./helpers.js"

/** A token that a background job would refresh; here the test refreshes it by hand. */
class TokenSource extends Context.Service<TokenSource, { readonly current: Effect.Effect<string>; readonly refresh: (t: string) => Effect.Effect<void> }>()(
  "test/TokenSource"
) {}

const tokenSource = Layer.effect(
  TokenSource,
  Effect.map(Ref.make("token-1"), (ref) => TokenSource.of({ current: Ref.get(ref), refresh: (t) => Ref.set(ref, t) }))
)

const bearer = GrpcMiddleware.clientMetadata((call) =>
  Effect.map(TokenSource.use((s) => s.current), (token) => call.metadata.set("authorization", `Bearer ${token}`))
)

/** A raw grpc-js Echo server that answers with the authorization header it received. */
const authEcho = () => {
  const seen: Array<string> = []
  const auth = (metadata: grpc.Metadata) => {
    const value = String(metadata.get("authorization")[0])
    seen.push(value)
    return value
  }
  const server = rawServer({
    unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const trailers = new grpc.Metadata()
      trailers.set("x-served-by", "raw")
      if (call.request.message === "fail") {
        return callback({ code: grpc.status.NOT_FOUND, details: "nope", metadata: trailers })
      }
      callback(null, { message: auth(call.metadata) }, trailers)
    },
    serverStreamingEcho: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      call.write({ message: auth(call.metadata) })
      call.write({ message: "2" })
      call.end()
    },
    clientStreamingEcho: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const value = auth(call.metadata)
      call.on("data", () => {})
      call.on("end", () => callback(null, { message: value }))
    },
    bidirectionalStreamingEcho: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      const value = auth(call.metadata)
      call.on("data", () => call.write({ message: value }))
      call.on("end", () => call.end())
    }
  })
  return Effect.map(server, ({ port }) => ({ port, seen }))
}

describe("GrpcMiddleware: client", () => {
  it.effect("adds metadata from an Effect service to all four call kinds, read at each call", () =>
    Effect.gen(function*() {
      const { port, seen } = yield* authEcho()
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
      const echo = yield* GrpcClient.make(EchoDefinition, { middleware: [bearer] }).pipe(
        Effect.provideService(GrpcClient.GrpcChannel, channel)
      )
      const unary = yield* echo.unaryEcho({ message: "u" })
      assert.strictEqual(unary.message, "Bearer token-1")
      yield* TokenSource.use((s) => s.refresh("token-2"))
      const streamed = yield* Stream.runCollect(echo.serverStreamingEcho({ message: "s" }))
      assert.deepStrictEqual(streamed.map((m) => m.message), ["Bearer token-2", "2"])
      const clientStreamed = yield* echo.clientStreamingEcho(Stream.make({ message: "a" }, { message: "b" }))
      assert.strictEqual(clientStreamed.message, "Bearer token-2")
      const bidi = yield* Stream.runCollect(echo.bidirectionalStreamingEcho(Stream.make({ message: "x" })))
      assert.deepStrictEqual(bidi.map((m) => m.message), ["Bearer token-2"])
      assert.deepStrictEqual(seen, ["Bearer token-1", "Bearer token-2", "Bearer token-2", "Bearer token-2"])
    }).pipe(Effect.provide(tokenSource)))

  it.effect("does not change the caller's own metadata object", () =>
    Effect.gen(function*() {
      const { port } = yield* authEcho()
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
      const echo = yield* GrpcClient.make(EchoDefinition, { middleware: [bearer] }).pipe(
        Effect.provideService(GrpcClient.GrpcChannel, channel)
      )
      const mine = new grpc.Metadata()
      mine.set("x-mine", "1")
      yield* echo.unaryEcho({ message: "u" }, { metadata: mine })
      assert.deepStrictEqual(mine.get("authorization"), [])
    }).pipe(Effect.provide(tokenSource)))

  it.effect("observes the status and trailers of each call, OK or not; outermost middleware first", () =>
    Effect.gen(function*() {
      const { port } = yield* authEcho()
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${port}`)
      const ended: Array<string> = []
      const observe = (name: string) =>
        GrpcMiddleware.clientObserve((call, code) =>
          Effect.sync(() =>
            ended.push(
              `${name} ${call.method.name} ${GrpcError.statusName(code)} ${String(call.trailers?.get("x-served-by")[0])} ${call.messagesSent}/${call.messagesReceived}`
            )
          )
        )
      const echo = GrpcClient.makeWith(channel, EchoDefinition, {
        middleware: [observe("outer"), observe("inner")],
        context: Context.empty()
      })
      yield* echo.unaryEcho({ message: "u" })
      const failed = yield* Effect.flip(echo.unaryEcho({ message: "fail" }))
      assert.strictEqual(failed.code, grpc.status.NOT_FOUND)
      yield* Stream.runDrain(echo.serverStreamingEcho({ message: "s" }))
      assert.deepStrictEqual(ended, [
        "inner UnaryEcho OK raw 1/1",
        "outer UnaryEcho OK raw 1/1",
        "inner UnaryEcho NOT_FOUND raw 1/0",
        "outer UnaryEcho NOT_FOUND raw 1/0",
        "inner ServerStreamingEcho OK undefined 1/2",
        "outer ServerStreamingEcho OK undefined 1/2"
      ])
    }))

  it.effect("calls made with middleware inside a handler still inherit its deadline", () =>
    Effect.gen(function*() {
      const deadlines: Array<number> = []
      const upstream = yield* rawServer({
        unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
          const deadline = call.getDeadline()
          deadlines.push(deadline instanceof Date ? deadline.getTime() : deadline)
          callback(null, { message: String(call.metadata.get("authorization")[0]) })
        }
      })
      const upstreamChannel = yield* GrpcClient.makeChannel(`127.0.0.1:${upstream.port}`)
      const upstreamEcho = yield* GrpcClient.make(EchoDefinition, { middleware: [bearer] }).pipe(
        Effect.provideService(GrpcClient.GrpcChannel, upstreamChannel)
      )
      const context = yield* Layer.build(
        GrpcServer.serve(EchoDefinition, { ...echoDefaults, unaryEcho: (req) => upstreamEcho.unaryEcho(req) }).pipe(
          Layer.provideMerge(GrpcServer.layerTest)
        )
      )
      const front = yield* GrpcClient.makeChannel(`127.0.0.1:${Context.get(context, GrpcServer.GrpcServer).port}`)
      const echo = GrpcClient.makeWith(front, EchoDefinition)
      const deadline = Date.now() + 30_000
      const reply = yield* echo.unaryEcho({ message: "hop" }, { deadline: new Date(deadline) })
      assert.strictEqual(reply.message, "Bearer token-1")
      assert.strictEqual(deadlines.length, 1)
      // The upstream rebuilds the deadline from a relative grpc-timeout, so it
      // lands later by the hop's latency (tens of ms on a loaded machine).
      // Without propagation it would have none at all (Infinity).
      assert.isTrue(
        Number.isFinite(deadlines[0]!) && deadlines[0]! <= deadline + 5_000,
        `upstream deadline ${deadlines[0]} follows the incoming ${deadline}`
      )
    }).pipe(Effect.provide(tokenSource)))

  it("types: a client whose middleware needs TokenSource requires it", () => {
    const made: Effect.Effect<GrpcClient.Client<typeof EchoDefinition>, never, GrpcClient.GrpcChannel | TokenSource> =
      GrpcClient.make(EchoDefinition, { middleware: [bearer] })
    // @ts-expect-error TokenSource cannot be dropped
    const dropped: Effect.Effect<GrpcClient.Client<typeof EchoDefinition>, never, GrpcClient.GrpcChannel> = GrpcClient.make(
      EchoDefinition,
      { middleware: [bearer] }
    )
    assert.strictEqual([made, dropped].length, 2)
  })

  it.effect("observes a response stream the consumer stopped early as CANCELLED", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({
        serverStreamingEcho: () => Stream.repeat(Stream.make({ message: "tick" }), Schedule.forever)
      })
      const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${server.port}`)
      const codes: Array<string> = []
      const echo = GrpcClient.makeWith(channel, EchoDefinition, {
        middleware: [GrpcMiddleware.clientObserve((_, code) => Effect.sync(() => codes.push(GrpcError.statusName(code))))],
        context: Context.empty()
      })
      const first = yield* Stream.runCollect(Stream.take(echo.serverStreamingEcho({ message: "s" }), 1))
      assert.strictEqual(first.length, 1)
      assert.deepStrictEqual(codes, ["CANCELLED"])
    }))
})
