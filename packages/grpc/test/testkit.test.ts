/**
 * The test kit as a user would use it: GrpcTest.layer serves a service on an
 * ephemeral port, GrpcClient.make talks to it, and TestClock drives the
 * handlers' time (sleeps, timeouts, Schedule retries). HTTP/2 deadlines stay
 * on real time (see the last test).
 */
import { assert, describe, it } from "@effect/vitest"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Fiber, Queue, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { GrpcClient, GrpcError, GrpcTest } from "../src/index.js"
import { echoDefaults } from "./helpers.js"

describe("GrpcTest + TestClock", () => {
  it.effect("a handler's Effect.sleep advances with TestClock.adjust", () =>
    Effect.gen(function*() {
      const sleeping = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const echo = yield* GrpcClient.make(EchoDefinition)
        const reply = yield* Effect.forkChild(echo.unaryEcho({ message: "later" }), { startImmediately: true })
        yield* Deferred.await(sleeping)
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* Fiber.join(reply), { message: "later" })
      }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
        ...echoDefaults,
        unaryEcho: (req) => Effect.andThen(Deferred.succeed(sleeping, undefined), Effect.as(Effect.sleep("1 minute"), req))
      })))
    }))

  it.effect("a handler's Schedule-driven retries run in virtual time", () =>
    Effect.gen(function*() {
      const attempts = yield* Queue.unbounded<number>()
      let n = 0
      // A dependency that fails twice, then answers.
      const flaky = Effect.suspend(() => {
        n++
        Queue.offerUnsafe(attempts, n)
        return n < 3
          ? Effect.fail(GrpcError.make(GrpcError.Status.UNAVAILABLE, `attempt ${n} failed`))
          : Effect.succeed({ message: `ok after ${n} attempts` })
      })
      yield* Effect.gen(function*() {
        const echo = yield* GrpcClient.make(EchoDefinition)
        const reply = yield* Effect.forkChild(echo.unaryEcho({ message: "" }), { startImmediately: true })
        assert.strictEqual(yield* Queue.take(attempts), 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Queue.take(attempts), 2)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* Queue.take(attempts), 3)
        assert.deepStrictEqual(yield* Fiber.join(reply), { message: "ok after 3 attempts" })
      }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
        ...echoDefaults,
        unaryEcho: () => flaky.pipe(Effect.retry({ schedule: Schedule.exponential("1 second"), times: 5 }))
      })))
    }))

  it.effect("a handler's Effect.timeout fires in virtual time and becomes the status", () =>
    Effect.gen(function*() {
      const waiting = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const echo = yield* GrpcClient.make(EchoDefinition)
        const reply = yield* Effect.forkChild(Effect.flip(echo.unaryEcho({ message: "" })), { startImmediately: true })
        yield* Deferred.await(waiting)
        yield* TestClock.adjust("10 seconds")
        const error = yield* Fiber.join(reply)
        assert.strictEqual(error.code, GrpcError.Status.DEADLINE_EXCEEDED)
        assert.strictEqual(error.message, "dependency took over 10s")
      }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
        ...echoDefaults,
        unaryEcho: () =>
          Deferred.succeed(waiting, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.timeoutOrElse({
              duration: "10 seconds",
              orElse: () => Effect.fail(GrpcError.make(GrpcError.Status.DEADLINE_EXCEEDED, "dependency took over 10s"))
            })
          )
      })))
    }))

  it.effect("a server stream paced by Effect.sleep emits one message per adjust", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const echo = yield* GrpcClient.make(EchoDefinition)
        const received = yield* Queue.unbounded<string>()
        yield* Effect.forkChild(
          Stream.runForEach(echo.serverStreamingEcho({ message: "tick" }), (m) => Queue.offer(received, m.message)),
          { startImmediately: true }
        )
        assert.strictEqual(yield* Queue.take(received), "tick 0")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Queue.take(received), "tick 1")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Queue.take(received), "tick 2")
      }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
        ...echoDefaults,
        serverStreamingEcho: (req) =>
          Stream.iterate(0, (i) => i + 1).pipe(
            Stream.take(3),
            Stream.mapEffect((i) => i === 0 ? Effect.succeed(i) : Effect.as(Effect.sleep("1 second"), i)),
            Stream.map((i) => ({ message: `${req.message} ${i}` }))
          )
      })))
    }))

  it.effect("HTTP/2 deadlines are real time: TestClock does not move them", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const echo = yield* GrpcClient.make(EchoDefinition)
        // A virtual hour passes, the 200 ms deadline is enforced on the wall clock.
        const reply = yield* Effect.forkChild(Effect.flip(echo.unaryEcho({ message: "" }, { timeout: "200 millis" })), {
          startImmediately: true
        })
        yield* TestClock.adjust("1 hour")
        assert.strictEqual((yield* Fiber.join(reply)).code, GrpcError.Status.DEADLINE_EXCEEDED)
      }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, { ...echoDefaults, unaryEcho: () => Effect.never })))
    }))
})
