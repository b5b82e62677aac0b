/**
 * Several real backends behind one channel: round_robin, failover, and the
 * caller's cancel and deadline reaching whichever backend serves a call.
 *
 * Picking, retry backoff and connection handling are grpc-js's: they run on
 * its own timers (wall clock), so these tests wait on what the backends
 * observed, never on time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { GrpcError, ServiceConfig } from "../src/index.js"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { assertDeadlineCarried } from "./deadlines.js"
import { echoClient, spread, startFleet } from "./fleet.js"

const roundRobin: ServiceConfig.ServiceConfig = { loadBalancing: "round_robin" }

const retryUnavailable: ServiceConfig.ServiceConfig = {
  loadBalancing: "round_robin",
  methods: [{
    names: ServiceConfig.methods(EchoDefinition, "unaryEcho"),
    retry: {
      maxAttempts: 3,
      initialBackoff: "10 millis",
      maxBackoff: "100 millis",
      backoffMultiplier: 2,
      retryableStatusCodes: ["UNAVAILABLE"]
    }
  }]
}

/** Calls until every backend has answered once: round_robin then has them all READY. */
const warmUp = (
  fleet: { arrivals: ReadonlyArray<{ backend: number }> },
  size: number,
  call: Effect.Effect<unknown, unknown>
) =>
  Effect.gen(function*() {
    while (new Set(fleet.arrivals.map((a) => a.backend)).size < size) yield* call
  })

/** Three backends where every call but the warm-up hangs, and a client connected to all of them. */
const hangingFleet = Effect.gen(function*() {
  const fleet = yield* startFleet(3, (arrival) => arrival.message === "warm-up" ? Effect.succeed({ message: "ok" }) : Effect.never)
  const echo = yield* echoClient(fleet.target, retryUnavailable)
  yield* warmUp(fleet, 3, echo.unaryEcho({ message: "warm-up" }))
  fleet.arrivals.length = 0
  return { fleet, echo }
})

describe("round_robin over several real servers", () => {
  it.effect("spreads calls evenly over every backend", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(3)
      const echo = yield* echoClient(fleet.target, roundRobin)
      yield* warmUp(fleet, 3, echo.unaryEcho({ message: "warm-up" }))
      fleet.arrivals.length = 0
      for (let i = 0; i < 30; i++) yield* echo.unaryEcho({ message: `call ${i}` })
      assert.deepStrictEqual(spread(fleet.arrivals, 3), [10, 10, 10])
      // and concurrent calls too
      fleet.arrivals.length = 0
      yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => echo.unaryEcho({ message: `c${i}` }), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(spread(fleet.arrivals, 3), [10, 10, 10])
    }))

  it.effect("pick_first (grpc-js's default) sends every call to one backend", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(3)
      const echo = yield* echoClient(fleet.target, {})
      for (let i = 0; i < 9; i++) yield* echo.unaryEcho({ message: `call ${i}` })
      assert.strictEqual(spread(fleet.arrivals, 3).filter((n) => n > 0).length, 1)
    }))

  it.effect("killing a backend mid-load loses no call the retry policy covers; uncovered calls fail UNAVAILABLE", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fleet = yield* startFleet(3, (arrival) =>
        arrival.message.startsWith("hold")
          ? Effect.as(Deferred.await(release), { message: `${arrival.message} from ${arrival.backend}` })
          : Effect.succeed({ message: `${arrival.message} from ${arrival.backend}` }))
      const echo = yield* echoClient(fleet.target, retryUnavailable)
      yield* warmUp(fleet, 3, echo.unaryEcho({ message: "warm-up" }))
      fleet.arrivals.length = 0

      // 30 unary calls (retry policy) and 6 server-streaming calls (none) in flight on the three backends
      const unary = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => Effect.exit(echo.unaryEcho({ message: `hold ${i}` })), {
          concurrency: "unbounded"
        })
      )
      const streams = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 6 }, (_, i) => i),
          (i) => Effect.exit(Stream.runCollect(echo.serverStreamingEcho({ message: `hold stream ${i}` }))),
          { concurrency: "unbounded" }
        )
      )
      yield* fleet.awaitArrivals((all) => all.length === 36)
      const onKilled = fleet.arrivals.filter((a) => a.backend === 1)
      assert.deepStrictEqual(spread(fleet.arrivals, 3), [12, 12, 12])

      yield* fleet.kill(1)
      // The killed backend's calls were cut (its handlers see the dropped connection)...
      yield* Effect.forEach(onKilled, (a) => Deferred.await(a.interrupted))
      // ...and each unary one arrives again on a live backend, as attempt 2.
      const retried = onKilled.filter((a) => !a.message.startsWith("hold stream")).map((a) => a.message)
      yield* fleet.awaitArrivals((all) => retried.every((m) => all.some((a) => a.message === m && a.previousAttempts === 1)))
      yield* Deferred.succeed(release, undefined)

      const unaryExits = yield* Fiber.join(unary)
      assert.strictEqual(unaryExits.filter(Exit.isSuccess).length, 30)
      for (const m of retried) {
        const second = fleet.arrivals.find((a) => a.message === m && a.previousAttempts === 1)!
        assert.notStrictEqual(second.backend, 1)
      }
      const streamExits = yield* Fiber.join(streams)
      const failed = streamExits.filter(Exit.isFailure)
      assert.strictEqual(failed.length, onKilled.length - retried.length)
      for (const exit of failed) {
        const error = exit.cause.reasons[0]
        assert.strictEqual(error?._tag, "Fail")
        if (error?._tag === "Fail") assert.strictEqual((error.error as GrpcError.GrpcError).code, GrpcError.Status.UNAVAILABLE)
      }
      // New calls go to the live backends only.
      fleet.arrivals.length = 0
      for (let i = 0; i < 10; i++) yield* echo.unaryEcho({ message: `after ${i}` })
      assert.strictEqual(spread(fleet.arrivals, 3)[1], 0)
    }))

  it.effect("a backend draining (graceful shutdown, as on SIGTERM) finishes its calls while new ones go to the others", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fleet = yield* startFleet(
        3,
        (arrival) =>
          arrival.message.startsWith("hold")
            ? Effect.as(Deferred.await(release), { message: "held" })
            : Effect.succeed({ message: `from ${arrival.backend}` }),
        { gracePeriod: "20 seconds" }
      )
      const echo = yield* echoClient(fleet.target, retryUnavailable)
      yield* warmUp(fleet, 3, echo.unaryEcho({ message: "warm-up" }))
      fleet.arrivals.length = 0
      const held = yield* Effect.forkChild(Effect.forEach([0, 1, 2], (i) => echo.unaryEcho({ message: `hold ${i}` }), {
        concurrency: "unbounded"
      }))
      yield* fleet.awaitArrivals((all) => all.length === 3)
      // Started at once: shutdown reaches grpc-js's tryShutdown (listener closed,
      // GOAWAY queued) before this fiber makes the calls below.
      const draining = yield* Effect.forkChild(fleet.servers[1]!.shutdown, { startImmediately: true })
      // New calls during the drain: none reaches the draining backend (it sent GOAWAY;
      // a stream that crossed it is refused and retried transparently by grpc-js).
      for (let i = 0; i < 12; i++) yield* echo.unaryEcho({ message: `during ${i}` })
      const during = fleet.arrivals.filter((a) => a.message.startsWith("during"))
      assert.strictEqual(during.length, 12)
      assert.isTrue(during.every((a) => a.backend !== 1))
      assert.isUndefined(draining.pollUnsafe(), "the drain waits for the held call")
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(held), [{ message: "held" }, { message: "held" }, { message: "held" }])
      yield* Fiber.join(draining)
      // The held call on the draining backend finished there, on its first attempt.
      assert.isTrue(fleet.arrivals.filter((a) => a.message.startsWith("hold")).every((a) => a.previousAttempts === 0))
    }))

  it.effect("a caller's interrupt reaches exactly the backend serving that call", () =>
    Effect.gen(function*() {
      const { fleet, echo } = yield* hangingFleet
      const fibers = yield* Effect.forEach([0, 1, 2], (i) => Effect.forkChild(echo.unaryEcho({ message: `call ${i}` })))
      const stream = yield* Effect.forkChild(Stream.runDrain(echo.serverStreamingEcho({ message: "stream" })))
      yield* fleet.awaitArrivals((all) => all.length === 4)
      for (const [i, fiber] of fibers.entries()) {
        const serving = fleet.arrivals.find((a) => a.message === `call ${i}`)!
        yield* Fiber.interrupt(fiber)
        yield* Deferred.await(serving.interrupted)
        // no other call was touched
        const others = fleet.arrivals.filter((a) => a !== serving && !fibers.slice(0, i).some((_, j) => a.message === `call ${j}`))
        for (const other of others) assert.isFalse(Deferred.isDoneUnsafe(other.interrupted))
      }
      yield* Fiber.interrupt(stream)
      yield* Deferred.await(fleet.arrivals.find((a) => a.message === "stream")!.interrupted)
      // none was retried: a cancel is not a failure
      assert.strictEqual(fleet.arrivals.length, 4)
    }))

  it.effect("a caller's deadline reaches the backend serving each call, which is interrupted when it passes", () =>
    Effect.gen(function*() {
      const { fleet, echo } = yield* hangingFleet
      // A second: every call must reach its (connected) backend before it passes.
      const sentAfter = Date.now()
      const deadline = new Date(sentAfter + 1000)
      const exits = yield* Effect.forEach(
        [0, 1, 2],
        (i) => Effect.exit(echo.unaryEcho({ message: `call ${i}` }, { deadline })),
        { concurrency: "unbounded" }
      )
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit))
      }
      assert.deepStrictEqual(spread(fleet.arrivals, 3), [1, 1, 1])
      for (const arrival of fleet.arrivals) {
        assertDeadlineCarried(arrival.deadline, deadline.getTime(), { sentAfter, seenAt: arrival.at })
        yield* Deferred.await(arrival.interrupted)
      }
    }))
})
