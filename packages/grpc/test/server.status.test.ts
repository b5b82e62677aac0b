import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect, Exit, Logger, Stream } from "effect"
import { CallContext, GrpcError } from "../src/index.js"
import { collect, clientStreamingCall, startEcho, unaryCall } from "./helpers.js"

const md = (entries: Record<string, string | Buffer>) => {
  const m = new grpc.Metadata()
  for (const [k, v] of Object.entries(entries)) m.set(k, v)
  return m
}

describe("GrpcServer: status, headers and trailers reach the client", () => {
  it.effect("on success: response headers and trailers", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: (req, ctx) =>
          Effect.gen(function*() {
            yield* ctx.sendHeaders(md({ "x-header": "h" }))
            yield* ctx.setTrailers(md({ "x-trailer": "t", "x-trailer-bin": Buffer.from([1, 2, 3]) }))
            return { message: req.message }
          })
      })
      const seen = yield* unaryCall(client, { message: "ok" })
      assert.strictEqual(seen.code, grpc.status.OK)
      assert.deepStrictEqual(seen.headers?.get("x-header"), ["h"])
      assert.deepStrictEqual(seen.trailers.get("x-trailer"), ["t"])
      assert.deepStrictEqual(seen.trailers.get("x-trailer-bin"), [Buffer.from([1, 2, 3])])
    }))

  it.effect("on failure: the GrpcError's code, message and trailers, plus those set before failing", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: (_req, ctx) =>
          Effect.gen(function*() {
            yield* ctx.setTrailers(md({ "x-set-before": "yes" }))
            return yield* GrpcError.make(GrpcError.Status.NOT_FOUND, "no such echo", md({ "x-reason": "missing" }))
          })
      })
      const seen = yield* unaryCall(client, { message: "?" })
      assert.strictEqual(seen.code, grpc.status.NOT_FOUND)
      assert.strictEqual(seen.details, "no such echo")
      assert.deepStrictEqual(seen.trailers.get("x-set-before"), ["yes"])
      assert.deepStrictEqual(seen.trailers.get("x-reason"), ["missing"])
    }))

  it.effect.each(Object.values(grpc.status).filter((c): c is grpc.status => typeof c === "number" && c !== 0))(
    "every non-OK code travels as sent from a streaming handler (%s)",
    (code) =>
      Effect.gen(function*() {
        const { client } = yield* startEcho({
          serverStreamingEcho: () =>
            Stream.concat(Stream.make({ message: "before" }), Stream.fail(GrpcError.make(code, `code ${code}`)))
        })
        const seen = yield* collect(client.serverStreamingEcho({ message: "x" }))
        assert.strictEqual(seen.code, code)
        assert.strictEqual(seen.details, `code ${code}`)
        assert.deepStrictEqual(seen.messages, [{ message: "before" }])
      })
  )

  it.effect("request metadata reaches the handler, binary keys included", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: () =>
          Effect.gen(function*() {
            const ctx = yield* CallContext.CallContext
            const bin = ctx.metadata.get("x-id-bin")[0] as Buffer
            return { message: `${ctx.metadata.get("x-user")[0]} ${bin.toString("hex")} ${ctx.peer.startsWith("127.0.0.1:")}` }
          })
      })
      const seen = yield* unaryCall(client, { message: "" }, {
        metadata: md({ "x-user": "ada", "x-id-bin": Buffer.from([0xca, 0xfe]) })
      })
      assert.deepStrictEqual(seen.response, { message: "ada cafe true" })
    }))

  it.effect("a defect becomes INTERNAL with a generic message, and the cause is logged on the server", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      const logger = Logger.make((options) => logged.push(`${options.logLevel} ${String(options.message)} ${options.cause}`))
      const { client } = yield* startEcho({
        unaryEcho: () => Effect.die(new Error("secret detail at /srv/app.ts:42")),
        clientStreamingEcho: () => Effect.sync(() => {
          throw new TypeError("thrown secret")
        })
      }).pipe(Effect.provide(Logger.layer([logger])))
      for (const seen of [
        yield* unaryCall(client, { message: "boom" }),
        yield* clientStreamingCall(client, (call) => call.end())
      ]) {
        assert.strictEqual(seen.code, grpc.status.INTERNAL)
        assert.strictEqual(seen.details, "Internal server error")
        assert.notInclude(JSON.stringify(seen.trailers.toJSON()), "secret")
      }
      assert.strictEqual(logged.length, 2)
      assert.include(logged[0], "secret detail")
      assert.include(logged[1], "thrown secret")
      assert.match(logged[0]!, /^Error /)
      // the server still serves
      const after = yield* unaryCall(client, { message: "again" })
      assert.strictEqual(after.code, grpc.status.INTERNAL)
    }))

  it.effect("a handler that fails after a defect in its stream still answers INTERNAL, once", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        bidirectionalStreamingEcho: (requests) => requests.pipe(Stream.mapEffect(() => Effect.die("bad")))
      }).pipe(Effect.provide(Logger.layer([])))
      const call = client.bidirectionalStreamingEcho()
      call.write({ message: "x" })
      const seen = yield* collect(call)
      assert.strictEqual(seen.code, grpc.status.INTERNAL)
    }))
})

describe("GrpcServer: normal completion is never reported as cancellation", () => {
  it.effect("200 calls of each kind complete OK with no handler interrupted", () =>
    Effect.gen(function*() {
      let interrupted = 0
      const count = Effect.onInterrupt(() => Effect.sync(() => interrupted++))
      const countStream = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
        Stream.onExit(stream, (exit) =>
          Effect.sync(() => {
            if (Exit.hasInterrupts(exit)) interrupted++
          }))
      const calls: Array<CallContext.ServerCall> = []
      const seen = <A>(ctx: CallContext.CallContext["Service"], a: A) => {
        calls.push(ctx.call)
        return a
      }
      const { client, server } = yield* startEcho({
        unaryEcho: (req, ctx) => count(Effect.succeed(seen(ctx, req))),
        serverStreamingEcho: (req, ctx) => seen(ctx, Stream.make(req, req).pipe(countStream)),
        clientStreamingEcho: (requests, ctx) =>
          seen(ctx, count(Stream.runFold(requests, () => ({ message: "" }), (_, r) => r))),
        bidirectionalStreamingEcho: (requests, ctx) => seen(ctx, requests.pipe(countStream))
      })
      const one = Effect.gen(function*() {
        const u = yield* unaryCall(client, { message: "u" })
        const s = yield* collect(client.serverStreamingEcho({ message: "s" }))
        const c = yield* clientStreamingCall(client, (call) => {
          call.write({ message: "c" })
          call.end()
        })
        const bidi = client.bidirectionalStreamingEcho()
        bidi.write({ message: "b" })
        bidi.end()
        const b = yield* collect(bidi)
        return [u.code, s.code, c.code, b.code, s.messages.length, b.messages.length]
      })
      const results = yield* Effect.all(Array.from({ length: 200 }, () => one), { concurrency: 16 })
      for (const r of results) assert.deepStrictEqual(r, [0, 0, 0, 0, 2, 1])
      yield* server.awaitIdle
      assert.strictEqual(interrupted, 0)
      // 'cancelled' fires after each of these calls too (grpc/grpc-node#2771):
      // the adapter must have stopped listening by then.
      assert.strictEqual(calls.length, 800)
      for (const call of calls) assert.strictEqual(call.listenerCount("cancelled"), 0)
    }))
})
