/**
 * A fleet of real Echo backends on 127.0.0.1, each behind a TCP proxy the
 * test can kill (its listener closes and its connections drop, as when a
 * process dies), and each recording what it observed per call.
 */
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Exit, Stream } from "effect"
import { type CallContext, GrpcClient, type GrpcError, GrpcServer, ServiceConfig } from "../src/index.js"
import { startEcho, tcpProxy } from "./helpers.js"

/** One call as a backend saw it. */
export interface Arrival {
  readonly backend: number
  readonly message: string
  /** `grpc-previous-rpc-attempts`, 0 when absent. */
  readonly previousAttempts: number
  /** The deadline the call arrived with (ms since epoch), or Infinity. */
  readonly deadline: number
  /** When the handler saw the call (ms since epoch). */
  readonly at: number
  /** Completes when the handler is interrupted (cancel, deadline, dropped connection). */
  readonly interrupted: Deferred.Deferred<void>
}

/** How a backend answers: the default echoes at once. */
export type Behaviour = (arrival: Arrival, ctx: CallContext.CallContext["Service"]) => Effect.Effect<{ message: string }, GrpcError.GrpcError>

export const echo: Behaviour = (arrival) => Effect.succeed({ message: `${arrival.message} from ${arrival.backend}` })

/** Hangs until interrupted. */
export const hang: Behaviour = () => Effect.never

export const startFleet = (size: number, behaviour: Behaviour = echo, options?: Partial<GrpcServer.Options>) =>
  Effect.gen(function*() {
    const arrivals: Array<Arrival> = []
    const listeners = new Set<() => void>()
    const record = (backend: number, message: string, ctx: CallContext.CallContext["Service"]) =>
      Effect.gen(function*() {
        const interrupted = yield* Deferred.make<void>()
        const previous = ctx.metadata.get("grpc-previous-rpc-attempts")[0]
        const arrival: Arrival = {
          backend,
          message,
          previousAttempts: previous === undefined ? 0 : Number(previous),
          deadline: ctx.deadline._tag === "Some" ? ctx.deadline.value.getTime() : Infinity,
          at: Date.now(),
          interrupted
        }
        arrivals.push(arrival)
        listeners.forEach((f) => f())
        return arrival
      })
    const backends = yield* Effect.forEach(Array.from({ length: size }, (_, i) => i), (backend) =>
      Effect.gen(function*() {
        const { server } = yield* startEcho({
          unaryEcho: (request, ctx) =>
            Effect.flatMap(record(backend, request.message, ctx), (arrival) =>
              behaviour(arrival, ctx).pipe(Effect.onInterrupt(() => Deferred.succeed(arrival.interrupted, undefined)))),
          serverStreamingEcho: (request, ctx) =>
            Stream.unwrap(Effect.map(record(backend, request.message, ctx), (arrival) =>
              Stream.fromEffect(behaviour(arrival, ctx)).pipe(
                Stream.onExit((exit) =>
                  Exit.hasInterrupts(exit) ? Deferred.succeed(arrival.interrupted, undefined) : Effect.void
                )
              )))
        }, options)
        const proxy = yield* tcpProxy(server.port)
        return { server, proxy }
      }))
    /** Waits until `predicate` holds for the arrivals so far. */
    const awaitArrivals = (predicate: (arrivals: ReadonlyArray<Arrival>) => boolean) =>
      Effect.callback<void>((resume) => {
        const check = () => {
          if (predicate(arrivals)) {
            listeners.delete(check)
            resume(Effect.void)
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
    return {
      arrivals,
      awaitArrivals,
      /** The ipv4: target that lists every backend (through its proxy). */
      target: `ipv4:${backends.map((b) => `127.0.0.1:${b.proxy.port}`).join(",")}`,
      /** Kills backend `i`: no more connections, and the open ones drop. */
      kill: (i: number) => Effect.sync(() => backends[i]!.proxy.close()),
      servers: backends.map((b) => b.server)
    }
  })

/** A typed Echo client on its own channel with `serviceConfig`. */
export const echoClient = (target: string, serviceConfig: ServiceConfig.ServiceConfig) =>
  Effect.map(
    Effect.orDie(GrpcClient.makeChannel(target, { serviceConfig })),
    (channel) => GrpcClient.makeWith(channel, EchoDefinition)
  )

/** Counts per backend. */
export const spread = (arrivals: ReadonlyArray<Arrival>, size: number) => {
  const counts = Array.from({ length: size }, () => 0)
  for (const a of arrivals) counts[a.backend]! += 1
  return counts
}

export type { GrpcServer }
