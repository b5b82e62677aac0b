import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"

import { Deferred, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import * as http2 from "node:http2"
import { GrpcError, GrpcServer } from "../src/index.js"
import { MALFORMED_TIMEOUT } from "../src/internal/server/guards.js"
import { connect, echoFrame, echoStream, rawCall, stallingProxy } from "./h2.js"
import { rawClient, rawServer, startEcho, unaryCall } from "./helpers.js"

/** A unary handler that answers FAILED_PRECONDITION with what it saw of its deadline. */
const reportDeadline = (_req: unknown, ctx: { readonly deadline: Option.Option<Date> }) =>
  Effect.fail(GrpcError.make(
    GrpcError.Status.FAILED_PRECONDITION,
    Option.match(ctx.deadline, { onNone: () => "none", onSome: (d) => String(d.getTime() - Date.now()) })
  ))

const goaway = (session: http2.ClientHttp2Session) =>
  Effect.callback<{ code: number; data: string }>((resume) => {
    session.once("goaway", (code, _last, data) => resume(Effect.succeed({ code, data: data?.toString() ?? "" })))
  })

const ping = (session: http2.ClientHttp2Session) =>
  Effect.callback<boolean>((resume) => {
    if (!session.ping((error) => resume(Effect.succeed(error === null)))) resume(Effect.succeed(false))
  })

/**
 * Opens and at once resets `count` streams on `session` (HEADERS, then
 * RST_STREAM CANCEL: the CVE-2023-44487 pattern), letting the event loop
 * turn every 100 so that a GOAWAY is seen; stops early once the session is
 * closing. Returns how many were sent.
 */
const resetStreams = (session: http2.ClientHttp2Session, count: number) =>
  Effect.promise(async () => {
    let sent = 0
    while (sent < count && !session.closed && !session.destroyed) {
      try {
        echoStream(session, "UnaryEcho").close(http2.constants.NGHTTP2_CANCEL)
      } catch {
        break
      }
      if (++sent % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return sent
  })

/**
 * How late, in all, a 10 ms interval timer ran while it was on (ms): the
 * time the event loop or the process could not run, from load on the machine
 * or in this process.
 */
const timerLateness = () => {
  let late = 0
  let last = performance.now()
  const timer = setInterval(() => {
    const now = performance.now()
    late += Math.max(0, now - last - 10)
    last = now
  }, 10)
  return {
    stop: () => {
      clearInterval(timer)
      return Math.round(late + Math.max(0, performance.now() - last - 10))
    }
  }
}

describe("GrpcServer: limits on what a peer can make the server do", () => {
  it.effect("a malformed grpc-timeout ends the call with INTERNAL at once, whatever grpc-js would make of it", () =>
    Effect.gen(function*() {
      // The client stream is never half-closed: only the deadline can end it.
      const { server } = yield* startEcho({ clientStreamingEcho: (requests) => Effect.as(Stream.runDrain(requests), { message: "" }) })
      const session = yield* connect(server.port)
      const malformed = ["-1S", "1.5S", "123456789S", "1 S", "1S junk", "junk 1S", "S", "1X", "1h", "1S,2S", "9".repeat(40) + "S"]
      const seen = yield* Effect.forEach(
        malformed,
        (value) => rawCall(session, "ClientStreamingEcho", { "grpc-timeout": value }, { halfClose: false }),
        { concurrency: "unbounded" }
      )
      for (const [i, outcome] of seen.entries()) {
        assert.strictEqual(outcome.status, grpc.status.INTERNAL, malformed[i])
        assert.strictEqual(outcome.message, `Invalid grpc-timeout value "${MALFORMED_TIMEOUT}"`, malformed[i])
      }
      // A valid short one still ends the call with DEADLINE_EXCEEDED.
      const short = yield* rawCall(session, "ClientStreamingEcho", { "grpc-timeout": "20m" }, { halfClose: false })
      assert.strictEqual(short.status, grpc.status.DEADLINE_EXCEEDED)
    }))

  it.effect("a valid grpc-timeout longer than any Node timer means no deadline; shorter ones are kept", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({ unaryEcho: reportDeadline })
      const session = yield* connect(server.port)
      const deadlineOf = (value: string) =>
        Effect.map(rawCall(session, "UnaryEcho", { "grpc-timeout": value }), (o) => {
          assert.strictEqual(o.status, grpc.status.FAILED_PRECONDITION, value)
          return o.message
        })
      // 99999999M would be a timer of -69,372,512 ms once grpc-js truncates it to 32 bits.
      assert.strictEqual(yield* deadlineOf("99999999M"), "none")
      assert.strictEqual(yield* deadlineOf("99999999H"), "none")
      assert.strictEqual(yield* deadlineOf("99999999S"), "none")
      const day = Number(yield* deadlineOf("24H"))
      assert.isAbove(day, 86_400_000 - 60_000)
      assert.isAtMost(day, 86_400_000)
      const ms = Number(yield* deadlineOf("99999999m"))
      assert.isAbove(ms, 99_999_999 - 60_000)
    }))

  it.effect("pinned: plain grpc-js reads grpc-timeout loosely (unanchored, truncated to 32 bits)", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({
        unaryEcho: (call, callback) => {
          const deadline = call.getDeadline()
          callback({ code: grpc.status.FAILED_PRECONDITION, details: String(Number(deadline) - Date.now()) })
        },
        // Never answers: only grpc-js's deadline timer can end it.
        clientStreamingEcho: (call) => call.on("data", () => {})
      })
      const session = yield* connect(port)
      // Nine digits are not a valid timeout; grpc-js reads the last eight,
      // and truncates 23,456,789,000 ms to 32 bits.
      const overLong = yield* rawCall(session, "UnaryEcho", { "grpc-timeout": "123456789S" })
      assert.strictEqual(overLong.status, grpc.status.FAILED_PRECONDITION)
      assert.isAbove(Number(overLong.message), (23_456_789_000 | 0) - 60_000)
      assert.isAtMost(Number(overLong.message), 23_456_789_000 | 0)
      // A negative timeout is read as positive.
      const negative = yield* rawCall(session, "UnaryEcho", { "grpc-timeout": "-30S" })
      assert.isAbove(Number(negative.message), 29_000)
      // A valid timeout of 190 years wraps to a negative timer: DEADLINE_EXCEEDED at once.
      const wrapped = yield* rawCall(session, "ClientStreamingEcho", { "grpc-timeout": "99999999M" }, { halfClose: false })
      assert.strictEqual(wrapped.status, grpc.status.DEADLINE_EXCEEDED)
    }))

  it.effect("responses are limited to 4 MiB by default; larger ones fail with RESOURCE_EXHAUSTED", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: (req) => Effect.succeed({ message: "x".repeat(Number(req.message)) })
      })
      const small = yield* unaryCall(client, { message: String(1024 * 1024) })
      assert.strictEqual(small.code, grpc.status.OK)
      const large = yield* unaryCall(client, { message: String(GrpcServer.defaults.maxSendMessageLength + 1) })
      assert.strictEqual(large.code, grpc.status.RESOURCE_EXHAUSTED)
    }))

  it.effect("advertises the stream and metadata limits in its SETTINGS; options override them", () =>
    Effect.gen(function*() {
      const byDefault = yield* startEcho({})
      const settings = (yield* connect(byDefault.server.port)).remoteSettings
      assert.strictEqual(settings.maxConcurrentStreams, GrpcServer.defaults.maxConcurrentStreams)
      assert.strictEqual(settings.maxHeaderListSize, GrpcServer.defaults.maxMetadataSize)
      const custom = yield* startEcho({}, { maxConcurrentStreams: 7, maxMetadataSize: 4096 })
      const customSettings = (yield* connect(custom.server.port)).remoteSettings
      assert.strictEqual(customSettings.maxConcurrentStreams, 7)
      assert.strictEqual(customSettings.maxHeaderListSize, 4096)
    }))

  it.effect("metadata over the limit is refused; the server keeps serving", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({ unaryEcho: Effect.succeed })
      const withMetadata = (bytes: number) => {
        const metadata = new grpc.Metadata()
        metadata.set("x-filler", "x".repeat(bytes))
        return unaryCall(client, { message: "m" }, { metadata })
      }
      assert.strictEqual((yield* withMetadata(8 * 1024)).code, grpc.status.OK)
      const refused = yield* withMetadata(20 * 1024)
      assert.notStrictEqual(refused.code, grpc.status.OK)
      assert.strictEqual((yield* unaryCall(client, { message: "after" })).code, grpc.status.OK)
    }))

  it.effect("a PING flood gets GOAWAY ENHANCE_YOUR_CALM too_many_pings; other connections keep working", () =>
    Effect.gen(function*() {
      const { server, client } = yield* startEcho({ unaryEcho: Effect.succeed })
      const session = yield* connect(server.port)
      const away = yield* Effect.forkChild(goaway(session), { startImmediately: true })
      for (let i = 0; i < 10; i++) session.ping(() => {})
      const seen = yield* Fiber.join(away)
      assert.strictEqual(seen.code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
      assert.strictEqual(seen.data, "too_many_pings")
      assert.strictEqual((yield* unaryCall(client, { message: "still serving" })).code, grpc.status.OK)
    }))

  it.effect("pings within the strikes allowed are answered; maxPingStrikes Infinity turns enforcement off", () =>
    Effect.gen(function*() {
      const strict = yield* startEcho({})
      const session = yield* connect(strict.server.port)
      // The first ping is never a strike; two more are allowed.
      for (let i = 0; i < 3; i++) assert.isTrue(yield* ping(session))
      const off = yield* startEcho({}, { maxPingStrikes: Infinity })
      const relaxed = yield* connect(off.server.port)
      const acked = yield* Effect.forEach(Array.from({ length: 50 }), () => ping(relaxed), { concurrency: 5 })
      assert.isTrue(acked.every((ok) => ok))
    }))

  it.effect("pinned: plain grpc-js answers any number of PINGs", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({})
      const session = yield* connect(port)
      const acked = yield* Effect.forEach(Array.from({ length: 50 }), () => ping(session), { concurrency: 5 })
      assert.isTrue(acked.every((ok) => ok))
    }))

  // Rapid reset (CVE-2023-44487). nghttp2 refills its bucket at 33 a second,
  // so 5,000 resets exceed a burst of 1,000 unless sending them took two
  // minutes: no timing is assumed.
  it.effect("pinned: plain grpc-js (Node's HTTP/2) answers more than 1,000 rapid resets on a connection with GOAWAY INTERNAL_ERROR", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({ unaryEcho: (call, callback) => callback(null, call.request) })
      const session = yield* connect(port)
      const away = yield* Effect.forkChild(goaway(session), { startImmediately: true })
      yield* resetStreams(session, 5000)
      assert.strictEqual((yield* Fiber.join(away)).code, http2.constants.NGHTTP2_INTERNAL_ERROR)
      // Other connections are served.
      const client = yield* rawClient(`127.0.0.1:${port}`)
      assert.strictEqual((yield* unaryCall(client, { message: "after" })).code, grpc.status.OK)
    }))

  it.effect("rapid resets: GrpcServer keeps Node's limit by default; resetStreamLimit lowers it", () =>
    Effect.gen(function*() {
      const byDefault = yield* startEcho({ unaryEcho: Effect.succeed })
      const flooded = yield* connect(byDefault.server.port)
      const away = yield* Effect.forkChild(goaway(flooded), { startImmediately: true })
      yield* resetStreams(flooded, 5000)
      assert.strictEqual((yield* Fiber.join(away)).code, http2.constants.NGHTTP2_INTERNAL_ERROR)
      // Within the default burst the connection is kept: a call after 500 resets, on it, is answered.
      const kept = yield* connect(byDefault.server.port)
      assert.strictEqual(yield* resetStreams(kept, 500), 500)
      assert.strictEqual((yield* rawCall(kept, "UnaryEcho", {})).status, grpc.status.OK)

      const strict = yield* startEcho({ unaryEcho: Effect.succeed }, { resetStreamLimit: { burst: 50, perSecond: 1 } })
      const limited = yield* connect(strict.server.port)
      const limitedAway = yield* Effect.forkChild(goaway(limited), { startImmediately: true })
      yield* resetStreams(limited, 1000)
      assert.strictEqual((yield* Fiber.join(limitedAway)).code, http2.constants.NGHTTP2_INTERNAL_ERROR)
      assert.strictEqual((yield* unaryCall(strict.client, { message: "after" })).code, grpc.status.OK)
    }))

  // Node writes both values into a Uint32Array for nghttp2: Infinity, NaN,
  // negatives and 2^32 or more would silently become a bucket (near) 0, and
  // every client that cancels a few calls would lose its connection.
  it.effect("resetStreamLimit: Infinity turns the limit off; values Node would mangle are refused", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({ unaryEcho: Effect.succeed }, {
        resetStreamLimit: { burst: Infinity, perSecond: Infinity }
      })
      const session = yield* connect(server.port)
      assert.strictEqual(yield* resetStreams(session, 2000), 2000)
      assert.strictEqual((yield* rawCall(session, "UnaryEcho", {})).status, grpc.status.OK)

      for (const limit of [{ burst: -1, perSecond: 1 }, { burst: 10, perSecond: NaN }, { burst: 1.5, perSecond: 1 }, { burst: 2 ** 32, perSecond: 1 }, { burst: 0, perSecond: 1 }]) {
        const error = yield* Layer.build(GrpcServer.layer({ ...GrpcServer.testOptions, resetStreamLimit: limit })).pipe(Effect.flip)
        assert.strictEqual(error._tag, "GrpcServerError", JSON.stringify(limit))
        assert.include(error.message, "resetStreamLimit")
      }
    }))

  // Wall-clock bounds on purpose (shutdown's bound is wall-clock), with
  // 700 ms of slack (the old bound, grace + 2 s, fails it) plus the time this
  // process could not run a timer on time while shutting down: on a loaded
  // machine shutdown's own timers are late by as much.
  it.live("shutdown returns within the grace period + 1 s with 40 streams to peers that stopped reading and 20 requests left open", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const kilobyte = { message: "x".repeat(1024) }
      const held = 20
      const holding = yield* Deferred.make<void>()
      let open = 0
      const { server } = yield* startEcho(
        {
          serverStreamingEcho: () => Stream.forever(Stream.make(kilobyte)),
          // Waits for a half-close that never comes.
          clientStreamingEcho: (requests) =>
            Effect.andThen(
              Effect.sync(() => ++open === held && Deferred.doneUnsafe(holding, Exit.void)),
              Effect.as(Stream.runDrain(requests), kilobyte)
            )
        },
        { gracePeriod: "300 millis" }
      ).pipe(Scope.provide(scope))
      const reader = yield* connect(server.port)
      const heldCalls = yield* Effect.forEach(Array.from({ length: held }), () =>
        Effect.forkChild(rawCall(reader, "ClientStreamingEcho", {}, { halfClose: false }), { startImmediately: true }))
      yield* Deferred.await(holding)
      const proxy = yield* stallingProxy(server.port)
      const streams = 40
      const sessions = yield* Effect.forEach(Array.from({ length: 4 }), () =>
        connect(proxy.port, { settings: { initialWindowSize: 2 ** 31 - 1 } }))
      const flowing = yield* Deferred.make<void>()
      let started = 0
      for (let i = 0; i < streams; i++) {
        const session = sessions[i % sessions.length]!
        session.setLocalWindowSize(2 ** 31 - 1)
        const stream = echoStream(session, "ServerStreamingEcho")
        stream.once("data", () => {
          if (++started === streams) Deferred.doneUnsafe(flowing, Exit.void)
        })
        stream.end(echoFrame("go"))
      }
      yield* Deferred.await(flowing)
      proxy.stall()
      assert.strictEqual(yield* server.activeCalls, streams + held)

      const lateness = timerLateness()
      const start = Date.now()
      yield* Scope.close(scope, Exit.void)
      const took = Date.now() - start
      const late = lateness.stop()
      assert.isAtLeast(took, 300)
      assert.isBelow(took, 300 + 1000 + 700 + late, `late by ${late} ms`)
      assert.strictEqual(yield* server.activeCalls, 0)
      // The peer that reads gets a status for every call it left open.
      for (const call of heldCalls) assert.strictEqual((yield* Fiber.join(call)).status, grpc.status.UNAVAILABLE)
    }))
})
