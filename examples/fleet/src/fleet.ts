/**
 * A fleet of three Echo backends and one balancer-aware client, in one
 * process: round robin spreads the calls, a backend is killed while it holds
 * calls and the retry policy moves them to the others, and a hedged call's
 * losing attempt is cancelled on the wire as soon as another one answers.
 *
 * Every line printed is what a backend or the client observed; `run` returns
 * the checks that decide the verdict.
 */
import { type CallContext, GrpcClient, GrpcError, GrpcServer, ServiceConfig } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"

interface Arrival {
  readonly backend: number
  readonly message: string
  readonly attempt: number
}

/** The client's service config: round robin; unaryEcho retried on UNAVAILABLE (it is idempotent). */
export const balanced: ServiceConfig.ServiceConfig = {
  loadBalancing: "round_robin",
  methods: [{
    names: ServiceConfig.methods(EchoDefinition, "unaryEcho"),
    retry: { maxAttempts: 3, initialBackoff: "20 millis", maxBackoff: "200 millis", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] }
  }]
}

/** The hedging client's: a second attempt if the first has not answered within 100 ms. */
export const hedged: ServiceConfig.ServiceConfig = {
  loadBalancing: "round_robin",
  methods: [{ names: ServiceConfig.methods(EchoDefinition, "unaryEcho"), hedging: { maxAttempts: 2, hedgingDelay: "100 millis" } }]
}

export interface Check {
  readonly name: string
  readonly passed: boolean
}

export const run = (log: (line: string) => void) =>
  Effect.gen(function*() {
    const arrivals: Array<Arrival> = []
    const listeners = new Set<() => void>()
    const arrive = (arrival: Arrival) => {
      arrivals.push(arrival)
      listeners.forEach((check) => check())
    }
    /** Waits (without polling) until the arrivals satisfy `predicate`. */
    const until = (predicate: () => boolean) =>
      Effect.callback<void>((resume) => {
        const check = () => {
          if (predicate()) {
            listeners.delete(check)
            resume(Effect.void)
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
    const release = yield* Deferred.make<void>()
    const loserCancelled = yield* Deferred.make<number>()
    const attemptOf = (ctx: CallContext.CallContext["Service"]) => Number(ctx.metadata.get("grpc-previous-rpc-attempts")[0] ?? 0) + 1

    // Three backends, each in its own Scope so that one can be killed.
    const backends = yield* Effect.forEach([0, 1, 2], (backend) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const handlers = GrpcServer.serve(EchoDefinition, {
          unaryEcho: (request, ctx) => {
            const attempt = attemptOf(ctx)
            arrive({ backend, message: request.message, attempt })
            const reply = Effect.succeed({ message: `${request.message} from backend-${backend}` })
            if (request.message.startsWith("hold")) return Effect.andThen(Deferred.await(release), reply)
            if (request.message === "hedged" && attempt === 1) {
              log(`backend-${backend}: "hedged" attempt 1 arrived; it will not answer`)
              return Effect.never.pipe(
                Effect.onInterrupt(() =>
                  Effect.sync(() => {
                    log(`backend-${backend}: "hedged" attempt 1 was cancelled by the client (handler interrupted)`)
                    Deferred.doneUnsafe(loserCancelled, Exit.succeed(backend))
                  })
                )
              )
            }
            if (request.message === "hedged") log(`backend-${backend}: "hedged" attempt ${attempt} arrived; answering`)
            return reply
          },
          serverStreamingEcho: () => Stream.die("not used"),
          clientStreamingEcho: () => Effect.die("not used"),
          bidirectionalStreamingEcho: () => Stream.die("not used")
        })
        // No grace period: killing it interrupts its calls at once (their clients see UNAVAILABLE).
        const context = yield* Layer.buildWithScope(
          handlers.pipe(Layer.provideMerge(GrpcServer.layer({ host: "127.0.0.1", port: 0, gracePeriod: 0 }))),
          scope
        )
        const port = Context.get(context, GrpcServer.GrpcServer).port
        yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
        return { port, kill: Scope.close(scope, Exit.void) }
      }))
    const target = `ipv4:${backends.map((b) => `127.0.0.1:${b.port}`).join(",")}`
    backends.forEach((b, i) => log(`backend-${i} listening on 127.0.0.1:${b.port}`))
    log(`client: ${target}, round_robin, unaryEcho retried on UNAVAILABLE (up to 3 attempts)`)

    const echo = GrpcClient.makeWith(yield* GrpcClient.makeChannel(target, { serviceConfig: balanced }), EchoDefinition)
    const spread = (from: number) =>
      [0, 1, 2].map((b) => arrivals.slice(from).filter((a) => a.backend === b).length)
    const show = (counts: ReadonlyArray<number>) => counts.map((n, b) => `backend-${b}: ${n}`).join(", ")
    const checks: Array<Check> = []

    // 1. Spread. round_robin only picks backends it is connected to: warm up until all three answered.
    while (new Set(arrivals.map((a) => a.backend)).size < 3) yield* echo.unaryEcho({ message: "warm-up" })
    let mark = arrivals.length
    for (let i = 0; i < 9; i++) yield* echo.unaryEcho({ message: `call ${i}` })
    log(`spread: 9 calls -> ${show(spread(mark))}`)
    checks.push({ name: "round robin spreads 9 calls 3/3/3", passed: spread(mark).every((n) => n === 3) })

    // 2. Failover: 9 calls held on the backends, then backend-2 is killed.
    mark = arrivals.length
    const held = yield* Effect.forkChild(Effect.forEach(
      Array.from({ length: 9 }, (_, i) => i),
      (i) => Effect.exit(echo.unaryEcho({ message: `hold ${i}` })),
      { concurrency: "unbounded" }
    ))
    yield* until(() => arrivals.length - mark === 9)
    log(`in flight: 9 held calls -> ${show(spread(mark))}`)
    const onKilled = arrivals.slice(mark).filter((a) => a.backend === 2).map((a) => a.message)
    yield* backends[2]!.kill
    log(`kill: backend-2 is gone; its ${onKilled.length} calls ended UNAVAILABLE and the client retries them`)
    yield* until(() => onKilled.every((m) => arrivals.some((a) => a.message === m && a.attempt === 2)))
    for (const m of onKilled) {
      const again = arrivals.find((a) => a.message === m && a.attempt === 2)!
      log(`failover: "${m}" attempt 2 (grpc-previous-rpc-attempts: 1) -> backend-${again.backend}`)
    }
    yield* Deferred.succeed(release, undefined)
    const exits = yield* Fiber.join(held)
    const ok = exits.filter(Exit.isSuccess).length
    log(`failover: ${ok}/9 held calls succeeded`)
    checks.push({ name: "no held call lost when backend-2 died", passed: ok === 9 && onKilled.length > 0 })
    mark = arrivals.length
    for (let i = 0; i < 6; i++) yield* echo.unaryEcho({ message: `after ${i}` })
    log(`after the kill: 6 calls -> ${show(spread(mark))}`)
    checks.push({ name: "new calls avoid the dead backend", passed: spread(mark)[2] === 0 })

    // 3. Hedging on a second channel over the two live backends.
    const live = `ipv4:${backends.slice(0, 2).map((b) => `127.0.0.1:${b.port}`).join(",")}`
    log(`hedging client: ${live}, unaryEcho hedged (a 2nd attempt after 100 ms, the first answer wins)`)
    const hedgedEcho = GrpcClient.makeWith(yield* GrpcClient.makeChannel(live, { serviceConfig: hedged }), EchoDefinition)
    mark = arrivals.length
    while (new Set(arrivals.slice(mark).map((a) => a.backend)).size < 2) yield* hedgedEcho.unaryEcho({ message: "warm-up" })
    const started = Date.now()
    const reply = yield* hedgedEcho.unaryEcho({ message: "hedged" }, { timeout: "5 seconds" })
    log(`hedge: the client got "${reply.message}" after ${Date.now() - started} ms`)
    const loser = yield* Deferred.await(loserCancelled).pipe(Effect.timeoutOption("5 seconds"))
    checks.push({
      name: "the hedged call's losing attempt was cancelled on the wire",
      passed: loser._tag === "Some" && !reply.message.endsWith(`backend-${loser.value}`)
    })
    return checks
  }).pipe(Effect.catchTag("ServiceConfigError", (e) => Effect.die(e)))

export { GrpcError }
