import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { EchoDefinition, type EchoRequest, type EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import { type CallContext, GrpcClient, GrpcError, GrpcServer } from "../src/index.js"
import type { ServiceHandlers } from "../src/ServiceDefinition.js"
import { assertDeadlineCarried, assertTimeoutCarried } from "./deadlines.js"
import { echoDefaults, rawServer } from "./helpers.js"

/** The upstream Echo client a middle server's handlers use, provided by its layer. */
class Upstream extends Context.Service<Upstream, GrpcClient.Client<typeof EchoDefinition>>()("test/Upstream") {}

const upstreamLayer = (port: number) =>
  Layer.effect(Upstream, GrpcClient.make(EchoDefinition)).pipe(
    Layer.provide(GrpcClient.layerChannel(`127.0.0.1:${port}`))
  )

/**
 * Serves Echo in the test's scope; returns the port. Handlers may use the
 * `Upstream` client; without an `upstream` it points at a port nothing
 * listens on (opening a channel does not connect).
 */
const serve = (
  handlers: Partial<ServiceHandlers<typeof EchoDefinition, Upstream | CallContext.CallContext>>,
  upstream: Layer.Layer<Upstream> = upstreamLayer(1)
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      GrpcServer.serve(EchoDefinition, { ...echoDefaults, ...handlers }).pipe(
        Layer.provide(upstream),
        Layer.provideMerge(GrpcServer.layerTest)
      )
    )
    return Context.get(context, GrpcServer.GrpcServer).port
  })

const clientFor = (port: number) =>
  Effect.map(GrpcClient.makeChannel(`127.0.0.1:${port}`), (channel) => GrpcClient.makeWith(channel, EchoDefinition))

/** A message every hop answers at once, to connect the channels before a test's call. */
const warmUp = { message: "warm-up" }

/**
 * C: a GrpcServer whose unary handler reports its deadline (and when it saw
 * it), then waits until interrupted (or released). It answers `warmUp` at once.
 */
const hopC = Effect.gen(function*() {
  const started = yield* Deferred.make<Option.Option<Date>>()
  const startedAt = yield* Deferred.make<number>()
  const finalized = yield* Deferred.make<Exit.Exit<unknown, unknown>>()
  const release = yield* Deferred.make<void>()
  const port = yield* serve({
    unaryEcho: (req, ctx) =>
      req.message === warmUp.message
        ? Effect.succeed(req)
        : Deferred.succeed(startedAt, Date.now()).pipe(
          Effect.andThen(Deferred.succeed(started, ctx.deadline)),
          Effect.andThen(Deferred.await(release)),
          Effect.as({ message: `C got ${req.message}` }),
          Effect.onExit((exit) => Deferred.succeed(finalized, exit))
        )
  })
  return { port, started, startedAt, finalized, release }
})

/**
 * B: forwards UnaryEcho to C with the Upstream client from its layer; no
 * cancellation or deadline code. `warmUp` goes to C as it is.
 */
const hopB = (portC: number, forward?: (req: EchoRequest) => Effect.Effect<EchoResponse, GrpcError.GrpcError, Upstream>) =>
  Effect.gen(function*() {
    const finalized = yield* Deferred.make<Exit.Exit<unknown, unknown>>()
    const port = yield* serve({
      unaryEcho: (req) =>
        req.message === warmUp.message
          ? Upstream.use((c) => c.unaryEcho(req))
          : (forward ? forward(req) : Upstream.use((c) => c.unaryEcho(req))).pipe(
            Effect.onExit((exit) => Deferred.succeed(finalized, exit))
          )
    }, upstreamLayer(portC))
    return { port, finalized }
  })

describe("propagation across three hops A -> B -> C", () => {
  it.effect("cancel at A: B's handler and C's handler are both interrupted", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const b = yield* hopB(c.port)
      const a = yield* clientFor(b.port)
      const call = yield* Effect.forkChild(a.unaryEcho({ message: "hi" }), { startImmediately: true })
      yield* Deferred.await(c.started)
      yield* Fiber.interrupt(call)
      assert.isTrue(Exit.hasInterrupts(yield* Deferred.await(c.finalized)))
      assert.isTrue(Exit.hasInterrupts(yield* Deferred.await(b.finalized)))
    }))

  // Deadline tests connect every hop first (`warmUp`): C must see the call
  // before A's deadline passes, and a first call also pays for two
  // connections. The deadline is then a second, far longer than a hop.
  it.effect("a deadline set at A interrupts C, which saw A's deadline; A sees DEADLINE_EXCEEDED", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const b = yield* hopB(c.port)
      const a = yield* clientFor(b.port)
      yield* a.unaryEcho(warmUp)
      const sentAfter = Date.now()
      const deadline = new Date(sentAfter + 1000)
      const error = yield* a.unaryEcho({ message: "hi" }, { deadline }).pipe(Effect.flip)
      assert.strictEqual(error.code, GrpcError.Status.DEADLINE_EXCEEDED)
      const seen = Option.getOrThrow(yield* Deferred.await(c.started))
      assertDeadlineCarried(seen.getTime(), deadline.getTime(), { sentAfter, seenAt: yield* Deferred.await(c.startedAt) })
      assert.isTrue(Exit.hasInterrupts(yield* Deferred.await(c.finalized)))
      // B's upstream call carries the same deadline, so B's handler ends either
      // interrupted or failed by that call's own DEADLINE_EXCEEDED, whichever
      // grpc-js timer fires first; never successfully.
      const bExit = yield* Deferred.await(b.finalized)
      assert.isTrue(
        Exit.hasInterrupts(bExit) ||
          Option.exists(Exit.findErrorOption(bExit), (e) => GrpcError.isGrpcError(e) && e.code === GrpcError.Status.DEADLINE_EXCEEDED),
        `B ended with ${String(bExit)}`
      )
    }))

  it.effect("C sees the earlier of B's own deadline and A's", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const b = yield* hopB(c.port, (req) => Upstream.use((up) => up.unaryEcho(req, { timeout: "1 second" })))
      const a = yield* clientFor(b.port)
      const sentAfter = Date.now()
      yield* Effect.forkChild(a.unaryEcho({ message: "hi" }, { timeout: "30 seconds" }), { startImmediately: true })
      const seen = Option.getOrThrow(yield* Deferred.await(c.started))
      // B's 1 s, counted from when B made its call (after A's), not A's 30 s.
      assertTimeoutCarried(seen.getTime(), 1000, { sentAfter, seenAt: yield* Deferred.await(c.startedAt) })
      yield* Deferred.succeed(c.release, undefined)
    }))

  it.effect("withoutPropagation in a detached fiber: the upstream call outlives its parent and has no deadline", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const upstreamReply = yield* Deferred.make<EchoResponse, GrpcError.GrpcError>()
      const b = yield* hopB(c.port, (req) =>
        Effect.gen(function*() {
          const up = yield* Upstream
          yield* Effect.forkDetach(
            GrpcClient.withoutPropagation(up.unaryEcho(req)).pipe(Effect.exit, Effect.flatMap((exit) => Deferred.done(upstreamReply, exit)))
          )
          return yield* Effect.never
        }))
      const a = yield* clientFor(b.port)
      // B's handler must start before A's deadline passes (connect A -> B first).
      yield* a.unaryEcho(warmUp)
      const error = yield* a.unaryEcho({ message: "audit" }, { timeout: "1 second" }).pipe(Effect.flip)
      assert.strictEqual(error.code, GrpcError.Status.DEADLINE_EXCEEDED)
      assert.isTrue(Exit.hasInterrupts(yield* Deferred.await(b.finalized)))
      // C started with no deadline and is still running after B was interrupted.
      assert.isTrue(Option.isNone(yield* Deferred.await(c.started)))
      assert.isFalse(yield* Deferred.isDone(c.finalized))
      yield* Deferred.succeed(c.release, undefined)
      assert.deepStrictEqual(yield* Deferred.await(upstreamReply), { message: "C got audit" })
      assert.isTrue(Exit.isSuccess(yield* Deferred.await(c.finalized)))
    }))

  it.effect("the per-call opt-out { propagate: false } drops the inherited deadline", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const b = yield* hopB(c.port, (req) => Upstream.use((up) => up.unaryEcho(req, { propagate: false })))
      const a = yield* clientFor(b.port)
      yield* Effect.forkChild(a.unaryEcho({ message: "x" }, { timeout: "30 seconds" }), { startImmediately: true })
      assert.isTrue(Option.isNone(yield* Deferred.await(c.started)))
      yield* Deferred.succeed(c.release, undefined)
    }))
})

/** A plain grpc-js server: reports when a call arrives and when it is cancelled; `respond` decides the rest. */
const watched = (respond?: (callback: grpc.sendUnaryData<EchoResponse>) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const cancelled = yield* Deferred.make<void>()
    const { port } = yield* rawServer({
      unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
        call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.void))
        Deferred.doneUnsafe(started, Exit.void)
        if (respond) Effect.runFork(respond(callback))
      }
    })
    const client = yield* clientFor(port)
    return { client, started, cancelled }
  })

describe("fan-out and races inside a handler", () => {
  it.effect("Effect.all: when one upstream fails, the other upstream servers observe CANCELLED", () =>
    Effect.gen(function*() {
      const slow1 = yield* watched()
      const slow2 = yield* watched()
      const failing = yield* watched((callback) =>
        // fails once both siblings are in flight, so there is something to cancel
        Effect.andThen(
          Effect.all([Deferred.await(slow1.started), Deferred.await(slow2.started)]),
          Effect.sync(() => callback({ code: grpc.status.NOT_FOUND, details: "no such thing" }))
        )
      )
      const port = yield* serve({
        unaryEcho: (req) =>
          Effect.all([slow1.client.unaryEcho(req), slow2.client.unaryEcho(req), failing.client.unaryEcho(req)], {
            concurrency: "unbounded"
          }).pipe(Effect.as({ message: "all done" }))
      })
      const a = yield* clientFor(port)
      const error = yield* a.unaryEcho({ message: "fan" }).pipe(Effect.flip)
      assert.strictEqual(error.code, GrpcError.Status.NOT_FOUND)
      assert.strictEqual(error.message, "no such thing")
      yield* Deferred.await(slow1.cancelled)
      yield* Deferred.await(slow2.cancelled)
    }))

  it.effect("Effect.race: the loser's server observes CANCELLED", () =>
    Effect.gen(function*() {
      const loser = yield* watched()
      const winner = yield* watched((callback) =>
        Effect.andThen(Deferred.await(loser.started), Effect.sync(() => callback(null, { message: "fast" })))
      )
      const port = yield* serve({
        unaryEcho: (req) => Effect.race(loser.client.unaryEcho(req), winner.client.unaryEcho(req))
      })
      const a = yield* clientFor(port)
      assert.deepStrictEqual(yield* a.unaryEcho({ message: "race" }), { message: "fast" })
      yield* Deferred.await(loser.cancelled)
    }))

  it.effect("an upstream call in a forked child fiber follows the handler's deadline too", () =>
    Effect.gen(function*() {
      const c = yield* hopC
      const upstream = yield* clientFor(c.port)
      const port = yield* serve({
        unaryEcho: (req) => Effect.forkChild(upstream.unaryEcho(req)).pipe(Effect.flatMap(Fiber.join))
      })
      const a = yield* clientFor(port)
      yield* a.unaryEcho(warmUp)
      const sentAfter = Date.now()
      const deadline = new Date(sentAfter + 1000)
      const error = yield* a.unaryEcho({ message: "x" }, { deadline }).pipe(Effect.flip)
      assert.strictEqual(error.code, GrpcError.Status.DEADLINE_EXCEEDED)
      const seen = Option.getOrThrow(yield* Deferred.await(c.started))
      assertDeadlineCarried(seen.getTime(), deadline.getTime(), { sentAfter, seenAt: yield* Deferred.await(c.startedAt) })
      assert.isTrue(Exit.hasInterrupts(yield* Deferred.await(c.finalized)))
    }))
})
