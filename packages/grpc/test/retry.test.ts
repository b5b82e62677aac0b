/**
 * Retries, hedging and per-method settings from the service config, on real
 * servers. Attempts, backoff, hedging delays and pushback are scheduled by
 * grpc-js (RetryingCall, on setTimeout): these tests run on the wall clock
 * and wait for what the backends observed, with delays chosen so that a
 * wrong implementation shows as a wrong count or status, not as a slow test.
 */
import { assert, describe, it } from "@effect/vitest"
import { EchoClient, EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { ErrorDetails, GrpcClient, GrpcError, ServiceConfig } from "../src/index.js"
import { type Behaviour, echoClient, startFleet } from "./fleet.js"
import { assertDeadlineCarried, assertTimeoutCarried } from "./deadlines.js"
import { gate, rawClient, startEcho } from "./helpers.js"

const unary = ServiceConfig.methods(EchoDefinition, "unaryEcho")

const retryPolicy = (overrides: Partial<ServiceConfig.RetryPolicy> = {}): ServiceConfig.RetryPolicy => ({
  maxAttempts: 3,
  initialBackoff: "10 millis",
  maxBackoff: "10 millis",
  backoffMultiplier: 1,
  retryableStatusCodes: ["UNAVAILABLE"],
  ...overrides
})

const unavailable = (message = "try again", trailers?: grpc.Metadata) =>
  Effect.fail(GrpcError.make(GrpcError.Status.UNAVAILABLE, message, trailers))

const failsUntilAttempt = (n: number): Behaviour => (arrival) =>
  arrival.previousAttempts < n ? unavailable() : Effect.succeed({ message: `attempt ${arrival.previousAttempts}` })

/**
 * `behaviour`, except that the message "warm-up" is answered at once: a test
 * whose call must reach a backend before a short deadline connects first (a
 * first call also pays for the connection, which a busy machine makes slow).
 */
const answersWarmUp = (behaviour: Behaviour): Behaviour => (arrival, ctx) =>
  arrival.message === "warm-up" ? Effect.succeed({ message: "warm" }) : behaviour(arrival, ctx)

/** One answered call, then the fleet's record is cleared. */
const warmUp = (fleet: { arrivals: Array<unknown> }, call: Effect.Effect<unknown, unknown>) =>
  Effect.andThen(call, Effect.sync(() => (fleet.arrivals.length = 0)))

const codeOf = <A>(exit: Exit.Exit<A, GrpcError.GrpcError>) => {
  assert.isTrue(Exit.isFailure(exit))
  return Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error.code : undefined
}

describe("retries (grpc-js A6, from the service config)", () => {
  it.effect("a retried call succeeds; each attempt tells the server how many came before (grpc-previous-rpc-attempts)", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, failsUntilAttempt(2))
      const echo = yield* echoClient(fleet.target, { methods: [{ names: unary, retry: retryPolicy() }] })
      assert.deepStrictEqual(yield* echo.unaryEcho({ message: "x" }), { message: "attempt 2" })
      assert.deepStrictEqual(fleet.arrivals.map((a) => a.previousAttempts), [0, 1, 2])
    }))

  it.effect("one deadline covers all attempts: every attempt carries the caller's deadline", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, () => unavailable())
      const echo = yield* echoClient(fleet.target, { methods: [{ names: unary, retry: retryPolicy() }] })
      const sentAfter = Date.now()
      const deadline = new Date(sentAfter + 5000)
      assert.strictEqual(codeOf(yield* Effect.exit(echo.unaryEcho({ message: "x" }, { deadline }))), GrpcError.Status.UNAVAILABLE)
      assert.strictEqual(fleet.arrivals.length, 3)
      for (const arrival of fleet.arrivals) {
        assertDeadlineCarried(arrival.deadline, deadline.getTime(), { sentAfter, seenAt: arrival.at }, `attempt ${arrival.previousAttempts}`)
      }
    }))

  it.effect("retries stop at the deadline: the call ends DEADLINE_EXCEEDED while the backoff (16-24 s) is pending", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, answersWarmUp(() => unavailable()))
      const echo = yield* echoClient(fleet.target, {
        methods: [{ names: unary, retry: retryPolicy({ maxAttempts: 5, initialBackoff: "20 seconds", maxBackoff: "20 seconds" }) }]
      })
      // Connected first, so that the first attempt surely arrives within the timeout.
      yield* warmUp(fleet, echo.unaryEcho({ message: "warm-up" }))
      const exit = yield* Effect.exit(echo.unaryEcho({ message: "x" }, { timeout: "1 second" }))
      assert.strictEqual(codeOf(exit), GrpcError.Status.DEADLINE_EXCEEDED)
      assert.strictEqual(fleet.arrivals.length, 1)
    }))

  it.live("an interrupt during the backoff starts no further attempt (wall clock: interrupts 200 ms into a 0.8-1.2 s backoff, then outwaits it)", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, (arrival) => arrival.message === "probe" ? Effect.succeed({ message: "probe" }) : unavailable())
      const echo = yield* echoClient(fleet.target, {
        methods: [{ names: unary, retry: retryPolicy({ initialBackoff: "1 second", maxBackoff: "1 second" }) }]
      })
      const call = yield* Effect.forkChild(echo.unaryEcho({ message: "x" }))
      yield* fleet.awaitArrivals((all) => all.length === 1)
      // The first attempt has been answered UNAVAILABLE by the server...
      yield* fleet.servers[0]!.awaitIdle
      // ...and 200 ms on the client has it: the retry timer (0.8-1.2 s) is
      // running, and the interrupt lands inside it with 600 ms to spare. (Were
      // the status still on its way, the interrupt would cancel the attempt
      // instead, and no attempt would follow either.)
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(call)
      // grpc-js schedules the retry on its own timer: the only way to see that
      // it never fires is to outwait it (1.2 s at most after the status)...
      yield* Effect.sleep("1300 millis")
      // ...and then to call on the same connection: a retry sent before this
      // call would have arrived before it.
      assert.deepStrictEqual(yield* echo.unaryEcho({ message: "probe" }), { message: "probe" })
      assert.deepStrictEqual(fleet.arrivals.map((a) => a.message), ["x", "probe"])
    }))

  it.effect("no retry once response headers were received (the call is committed)", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, (_arrival, ctx) =>
        Effect.andThen(ctx.sendHeaders(new grpc.Metadata()), unavailable("after headers")))
      const echo = yield* echoClient(fleet.target, { methods: [{ names: unary, retry: retryPolicy() }] })
      assert.strictEqual(codeOf(yield* Effect.exit(echo.unaryEcho({ message: "x" }))), GrpcError.Status.UNAVAILABLE)
      assert.strictEqual(fleet.arrivals.length, 1)
    }))

  it.effect("only the methods the config names are retried (idempotency is declared per method)", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, () => unavailable())
      const echo = yield* echoClient(fleet.target, { methods: [{ names: unary, retry: retryPolicy() }] })
      const exit = yield* Effect.exit(Stream.runCollect(echo.serverStreamingEcho({ message: "not idempotent" })))
      assert.strictEqual(codeOf(exit), GrpcError.Status.UNAVAILABLE)
      assert.strictEqual(fleet.arrivals.length, 1)
      // and a status the policy does not list is final too
      const other = yield* startFleet(1, () => Effect.fail(GrpcError.make(GrpcError.Status.INTERNAL, "bug")))
      const echo2 = yield* echoClient(other.target, { methods: [{ names: unary, retry: retryPolicy() }] })
      assert.strictEqual(codeOf(yield* Effect.exit(echo2.unaryEcho({ message: "x" }))), GrpcError.Status.INTERNAL)
      assert.strictEqual(other.arrivals.length, 1)
    }))

  it.effect("server pushback (grpc-retry-pushback-ms) replaces the backoff: retried after it, or never", () =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const fleet = yield* startFleet(1, (arrival) => {
        times.push(Date.now())
        if (arrival.message === "never") return unavailable("go away", ServiceConfig.retryPushback("never"))
        return arrival.previousAttempts === 0
          ? unavailable("later", ServiceConfig.retryPushback("150 millis"))
          : Effect.succeed({ message: "ok" })
      })
      // Without pushback the first retry would wait 16-24 s.
      const echo = yield* echoClient(fleet.target, {
        methods: [{ names: unary, retry: retryPolicy({ initialBackoff: "20 seconds", maxBackoff: "20 seconds" }) }]
      })
      assert.deepStrictEqual(yield* echo.unaryEcho({ message: "x" }, { timeout: "10 seconds" }), { message: "ok" })
      assert.strictEqual(fleet.arrivals.length, 2)
      assert.isAtLeast(times[1]! - times[0]!, 140)
      assert.strictEqual(codeOf(yield* Effect.exit(echo.unaryEcho({ message: "never" }))), GrpcError.Status.UNAVAILABLE)
      assert.strictEqual(fleet.arrivals.length, 3)
    }))

  it.effect("google.rpc.RetryInfo in a handler's error details (ErrorDetails) is sent as pushback too, so A6 clients honour it", () =>
    Effect.gen(function*() {
      const overloaded = ErrorDetails.make(GrpcError.Status.UNAVAILABLE, "overloaded", [
        ErrorDetails.detail("RetryInfo", { retryDelay: { seconds: 0n, nanos: 150_000_000 } })
      ])
      const times: Array<number> = []
      const trailersSeen: Array<string | undefined> = []
      const fleet = yield* startFleet(1, (arrival) => {
        times.push(Date.now())
        return arrival.previousAttempts === 0 ? Effect.fail(overloaded) : Effect.succeed({ message: "ok" })
      })
      const echo = yield* echoClient(fleet.target, {
        methods: [{ names: unary, retry: retryPolicy({ initialBackoff: "20 seconds", maxBackoff: "20 seconds" }) }]
      })
      assert.deepStrictEqual(yield* echo.unaryEcho({ message: "x" }, { timeout: "10 seconds" }), { message: "ok" })
      assert.strictEqual(fleet.arrivals.length, 2)
      assert.isAtLeast(times[1]! - times[0]!, 140)
      // what a plain grpc-js client (no retry policy) receives
      const raw = yield* rawClient(fleet.target)
      yield* Effect.callback<void>((resume) => {
        const call = raw.unaryEcho({ message: "y" }, () => {})
        call.on("status", (status) => {
          trailersSeen.push(status.metadata.get("grpc-retry-pushback-ms")[0]?.toString())
          resume(Effect.void)
        })
      })
      assert.deepStrictEqual(trailersSeen, ["150"])
      // The pushback went on a copy: the error, sent twice, is unchanged.
      assert.deepStrictEqual(overloaded.metadata.get("grpc-retry-pushback-ms"), [])
    }))

  it.effect("retry throttling: failures spend the channel's tokens, and retries stop at half of maxTokens", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, () => unavailable())
      const echo = yield* echoClient(fleet.target, {
        methods: [{ names: unary, retry: retryPolicy({ maxAttempts: 5 }) }],
        retryThrottling: { maxTokens: 4, tokenRatio: 0.1 }
      })
      const perCall: Array<number> = []
      for (let i = 0; i < 3; i++) {
        const before = fleet.arrivals.length
        yield* Effect.exit(echo.unaryEcho({ message: `${i}` }))
        perCall.push(fleet.arrivals.length - before)
      }
      // tokens 4 -> 3 (retry allowed: 3 > 2) -> 2 (denied), then 1 and 0: no more retries
      assert.deepStrictEqual(perCall, [2, 1, 1])
    }))

  it.effect("client streaming: a stream that fits the 64 KiB per-call retry buffer is replayed; a longer one is committed and not retried", () =>
    Effect.gen(function*() {
      const seen: Array<{ attempt: number; messages: number }> = []
      const { server } = yield* startEcho({
        clientStreamingEcho: (requests, ctx) =>
          Effect.gen(function*() {
            const all = yield* Stream.runCollect(requests)
            const attempt = Number(ctx.metadata.get("grpc-previous-rpc-attempts")[0] ?? 0)
            seen.push({ attempt, messages: all.length })
            return attempt === 0 ? yield* unavailable() : { message: `${all.length}` }
          })
      })
      const echo = yield* echoClient(`127.0.0.1:${server.port}`, {
        methods: [{ names: ServiceConfig.methods(EchoDefinition, "clientStreamingEcho"), retry: retryPolicy() }]
      })
      const message = "x".repeat(8 * 1024)
      const small = yield* echo.clientStreamingEcho(Stream.make(...Array.from({ length: 4 }, () => ({ message }))))
      assert.deepStrictEqual(small, { message: "4" })
      assert.deepStrictEqual(seen, [{ attempt: 0, messages: 4 }, { attempt: 1, messages: 4 }])
      seen.length = 0
      const large = yield* Effect.exit(echo.clientStreamingEcho(Stream.make(...Array.from({ length: 16 }, () => ({ message })))))
      assert.strictEqual(codeOf(large), GrpcError.Status.UNAVAILABLE)
      assert.deepStrictEqual(seen, [{ attempt: 0, messages: 16 }])
    }))
})

describe("hedging (grpc-js A6, from the service config)", () => {
  const hedging = (maxAttempts: number): ServiceConfig.ServiceConfig => ({
    loadBalancing: "round_robin",
    methods: [{ names: unary, hedging: { maxAttempts, hedgingDelay: "50 millis" } }]
  })

  it.effect("hedges go to other backends; the first answer wins and every loser is cancelled on the wire", () =>
    Effect.gen(function*() {
      // Only the third attempt answers; the first two hang until cancelled.
      const fleet = yield* startFleet(3, (arrival) =>
        arrival.message === "warm-up" || arrival.previousAttempts === 2
          ? Effect.succeed({ message: `from ${arrival.backend}` })
          : Effect.never)
      const echo = yield* echoClient(fleet.target, hedging(3))
      while (new Set(fleet.arrivals.map((a) => a.backend)).size < 3) yield* echo.unaryEcho({ message: "warm-up" })
      fleet.arrivals.length = 0
      const reply = yield* echo.unaryEcho({ message: "hedged" })
      const [first, second, third] = fleet.arrivals
      assert.deepStrictEqual(fleet.arrivals.map((a) => a.previousAttempts), [0, 1, 2])
      assert.strictEqual(new Set(fleet.arrivals.map((a) => a.backend)).size, 3)
      assert.deepStrictEqual(reply, { message: `from ${third!.backend}` })
      yield* Deferred.await(first!.interrupted)
      yield* Deferred.await(second!.interrupted)
    }))

  it.effect("interrupting a hedged call cancels every attempt on the wire", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(3, (arrival) =>
        arrival.message === "warm-up" ? Effect.succeed({ message: "ok" }) : Effect.never)
      const echo = yield* echoClient(fleet.target, hedging(3))
      while (new Set(fleet.arrivals.map((a) => a.backend)).size < 3) yield* echo.unaryEcho({ message: "warm-up" })
      fleet.arrivals.length = 0
      const call = yield* Effect.forkChild(echo.unaryEcho({ message: "hedged" }))
      yield* fleet.awaitArrivals((all) => all.length === 3)
      yield* Fiber.interrupt(call)
      yield* Effect.forEach(fleet.arrivals, (a) => Deferred.await(a.interrupted))
    }))

  it.effect("the deadline ends every hedge", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(2, answersWarmUp(() => Effect.never))
      const echo = yield* echoClient(fleet.target, hedging(2))
      // Both backends connected, so that both hedges surely arrive within the second.
      while (new Set(fleet.arrivals.map((a) => a.backend)).size < 2) yield* echo.unaryEcho({ message: "warm-up" })
      fleet.arrivals.length = 0
      const exit = yield* Effect.exit(echo.unaryEcho({ message: "hedged" }, { timeout: "1 second" }))
      assert.strictEqual(codeOf(exit), GrpcError.Status.DEADLINE_EXCEEDED)
      assert.strictEqual(fleet.arrivals.length, 2)
      yield* Effect.forEach(fleet.arrivals, (a) => Deferred.await(a.interrupted))
    }))
})

describe("per-method timeout and waitForReady", () => {
  it.effect("a method's timeout becomes the call's deadline on the wire", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, answersWarmUp(() => Effect.never))
      const echo = yield* echoClient(fleet.target, { methods: [{ names: unary, timeout: "1 second" }] })
      // Connected first, so that the call surely arrives within its second.
      yield* warmUp(fleet, echo.unaryEcho({ message: "warm-up" }))
      const sentAfter = Date.now()
      assert.strictEqual(codeOf(yield* Effect.exit(echo.unaryEcho({ message: "x" }))), GrpcError.Status.DEADLINE_EXCEEDED)
      const arrival = fleet.arrivals[0]!
      assertTimeoutCarried(arrival.deadline, 1000, { sentAfter, seenAt: arrival.at })
    }))

  it.effect("grpc-js 1.14 reads a fractional timeout string \"1.5s\" as 1 s + 5 ns (ServiceConfig sends seconds + nanos)", () =>
    Effect.gen(function*() {
      const fleet = yield* startFleet(1, answersWarmUp(() => Effect.never))
      const raw = yield* rawClient(fleet.target, {
        "grpc.service_config": JSON.stringify({
          methodConfig: [{ name: [{ service: "grpc.examples.echo.Echo" }], timeout: "1.5s" }]
        })
      })
      // Connected first, so that the call surely arrives within its second.
      yield* warmUp(fleet, Effect.callback<void>((resume) => void raw.unaryEcho({ message: "warm-up" }, () => resume(Effect.void))))
      const sentAfter = Date.now()
      raw.unaryEcho({ message: "x" }, () => {})
      yield* fleet.awaitArrivals((all) => all.length === 1)
      // A deadline 1 s after the call started, moved later only by transit: 1.5 s would
      // put it past `seenAt + 1000` (unless the call spent 500 ms in transit).
      const arrival = fleet.arrivals[0]!
      assertTimeoutCarried(arrival.deadline, 1000, { sentAfter, seenAt: arrival.at })
    }))

  it.effect("waitForReady: grpc-js ignores it in the service config; GrpcClient applies it, so the call waits for a backend", () =>
    Effect.gen(function*() {
      // A port that drops every connection until the test opens it to a server.
      const backend = yield* gate
      const port = backend.port
      const json = JSON.stringify({ methodConfig: [{ name: [{}], waitForReady: true }] })
      // plain grpc-js: fails at once although the config says wait
      const raw = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.service_config": json })
      const rawCode = yield* Effect.callback<number>((resume) => {
        raw.unaryEcho({ message: "x" }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (error) =>
          resume(Effect.succeed(error?.code ?? 0)))
      })
      raw.close()
      assert.strictEqual(rawCode, GrpcError.Status.UNAVAILABLE)

      const channel = yield* Effect.orDie(GrpcClient.makeChannel(`127.0.0.1:${port}`, {
        serviceConfig: { methods: [{ names: ServiceConfig.allMethods, waitForReady: true }] }
      }))
      const echo = GrpcClient.makeWith(channel, EchoDefinition)
      const call = yield* Effect.forkChild(echo.unaryEcho({ message: "waited" }, { timeout: "20 seconds" }))
      // The channel has tried and failed to connect while the call waits.
      yield* Effect.callback<void>((resume) => {
        const ch = channel.client.getChannel()
        const check = () => {
          if (ch.getConnectivityState(true) === grpc.connectivityState.TRANSIENT_FAILURE) resume(Effect.void)
          else ch.watchConnectivityState(ch.getConnectivityState(false), Date.now() + 20_000, check)
        }
        check()
      })
      assert.isUndefined(call.pollUnsafe())
      const { server } = yield* startEcho({ unaryEcho: (request) => Effect.succeed({ message: `${request.message} after all` }) })
      backend.open(server.port)
      assert.deepStrictEqual(yield* Fiber.join(call), { message: "waited after all" })
    }))
})
