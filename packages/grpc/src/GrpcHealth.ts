/**
 * The standard health service, `grpc.health.v1.Health` (Check and Watch),
 * tied to the server's lifecycle.
 *
 * - Every service registered on the server is `SERVING` by default, and so is
 *   `""` (the whole server). The app and handlers change a status with
 *   `GrpcHealth.setStatus`; names that are neither registered nor set are
 *   unknown: `Check` answers `NOT_FOUND`, `Watch` sends `SERVICE_UNKNOWN` and
 *   stays open, as `health.proto` specifies.
 * - `Watch` sends the current status at once, then every change.
 * - When graceful shutdown starts, every status becomes `NOT_SERVING` before
 *   the server stops accepting calls and drains, so readiness probes and
 *   client-side health checks move traffic away while in-flight calls finish.
 *   Open `Watch` streams receive that `NOT_SERVING` and then end with `OK`
 *   (which `health.proto` tells clients to treat as "retry"), so they never
 *   hold shutdown up. Later `setStatus` calls are ignored. Probes that poll
 *   need time to see it: the server's `drainDelay` option keeps accepting
 *   calls for a while after the switch.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { GrpcHealth, GrpcServer } from "@fiber-grpc/grpc"
 *
 * // Serve health next to your services; handlers can yield GrpcHealth too.
 * const main = Layer.mergeAll(MyService, GrpcHealth.layer).pipe(
 *   Layer.provideMerge(GrpcServer.layer({ port: 50051 }))
 * )
 *
 * // Later, e.g. when the database goes away:
 * yield* GrpcHealth.setStatus("my.pkg.MyService", GrpcHealth.ServingStatus.NOT_SERVING)
 * ```
 *
 * @since 0.1.0
 * @module
 */
import { Context, Effect, Layer, Option, type Scope, Stream, SubscriptionRef } from "effect"
import {
  type HealthCheckResponse,
  HealthDefinition as GeneratedHealthDefinition
} from "./generated/grpc/health/v1/health.js"
import * as GrpcError from "./GrpcError.js"
import * as GrpcServer from "./GrpcServer.js"
import type { ServiceDefinition } from "./ServiceDefinition.js"

/**
 * The serving statuses of `health.proto`, with its numbers.
 *
 * @since 0.1.0
 */
export const ServingStatus = {
  /** Not used by this server (the proto's zero value). */
  UNKNOWN: 0,
  /** The service (or, for `""`, the server) accepts calls. */
  SERVING: 1,
  /** Known, but not accepting calls: clients and load balancers should go elsewhere. */
  NOT_SERVING: 2,
  /** Sent by Watch only, for a service the server does not know (yet). */
  SERVICE_UNKNOWN: 3
} as const

/**
 * A serving status: one of the numbers of `ServingStatus`.
 *
 * @since 0.1.0
 */
export type ServingStatus = typeof ServingStatus[keyof typeof ServingStatus]

/**
 * The generated definition of `grpc.health.v1.Health`, for clients:
 * `GrpcClient.make(GrpcHealth.HealthDefinition)`.
 *
 * @since 0.1.0
 */
export const HealthDefinition = GeneratedHealthDefinition

/**
 * The health statuses of this server.
 *
 * @since 0.1.0
 */
export class GrpcHealth extends Context.Service<GrpcHealth, {
  /** Sets the status of `service` (a full service name, or `""` for the whole server). Ignored once shutdown has started. */
  readonly setStatus: (service: string, status: ServingStatus) => Effect.Effect<void>
  /** Forgets a status set with `setStatus`: the service is back to its default (SERVING if registered, else unknown). */
  readonly clearStatus: (service: string) => Effect.Effect<void>
  /** The status of `service` now; `None` when it is unknown. */
  readonly status: (service: string) => Effect.Effect<Option.Option<ServingStatus>>
  /**
   * The status of `service` now, then every change (`SERVICE_UNKNOWN` while
   * it is unknown). Ends after the `NOT_SERVING` sent when shutdown starts.
   */
  readonly watch: (service: string) => Stream.Stream<ServingStatus>
}>()("@fiber-grpc/grpc/GrpcHealth") {}

/** What a status is computed from. */
interface State {
  /** Statuses set by the app. */
  readonly explicit: ReadonlyMap<string, ServingStatus>
  /** True once graceful shutdown has started. */
  readonly shuttingDown: boolean
}

/** The status of `service`: set by the app, else SERVING when registered (or `""`), else unknown. */
const statusOf = (
  state: State,
  registered: ReadonlyArray<ServiceDefinition>,
  service: string
): Option.Option<ServingStatus> => {
  const known = state.explicit.get(service) ??
    (service === "" || registered.some((d) => d.fullName === service) ? ServingStatus.SERVING : undefined)
  if (known === undefined) return Option.none()
  return Option.some(state.shuttingDown ? ServingStatus.NOT_SERVING : known)
}

/**
 * Builds the health state of the `GrpcServer` in context and hooks it to the
 * server's shutdown. Does not serve it (see `layer`).
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<GrpcHealth["Service"], never, GrpcServer.GrpcServer | Scope.Scope> = Effect
  .gen(function*() {
    const server = yield* GrpcServer.GrpcServer
    const state = yield* SubscriptionRef.make<State>({ explicit: new Map(), shuttingDown: false })
    const update = (f: (explicit: Map<string, ServingStatus>) => void) =>
      SubscriptionRef.update(state, (s) => {
        if (s.shuttingDown) return s
        const explicit = new Map(s.explicit)
        f(explicit)
        return { ...s, explicit }
      })
    yield* server.onShutdown(SubscriptionRef.update(state, (s) => ({ ...s, shuttingDown: true })))

    return GrpcHealth.of({
      setStatus: (service, status) => update((explicit) => explicit.set(service, status)),
      clearStatus: (service) => update((explicit) => explicit.delete(service)),
      status: (service) =>
        Effect.zipWith(SubscriptionRef.get(state), server.services, (s, registered) => statusOf(s, registered, service)),
      watch: (service) =>
        Stream.zipLatest(SubscriptionRef.changes(state), server.servicesChanges).pipe(
          // Inclusive: the first state after shutdown starts is sent, then the stream ends.
          Stream.takeUntil(([s]) => s.shuttingDown),
          Stream.map(([s, registered]) => Option.getOrElse(statusOf(s, registered, service), () => ServingStatus.SERVICE_UNKNOWN)),
          // Only the latest status matters: a watcher that stops reading holds
          // one pending status, not every change since (the changes of a
          // SubscriptionRef are buffered without bound).
          Stream.buffer({ capacity: 1, strategy: "sliding" }),
          Stream.changes
        )
    })
  })

/**
 * Sets the status of `service` on the `GrpcHealth` in context.
 *
 * @since 0.1.0
 */
export const setStatus = (service: string, status: ServingStatus): Effect.Effect<void, never, GrpcHealth> =>
  GrpcHealth.use((health) => health.setStatus(service, status))

/** The `grpc.health.v1.Health` handlers for a `GrpcHealth`. */
const handlers = (health: GrpcHealth["Service"]) => ({
  check: (request: { readonly service: string }): Effect.Effect<HealthCheckResponse, GrpcError.GrpcError> =>
    Effect.flatMap(health.status(request.service), (status) =>
      Option.match(status, {
        onNone: () => Effect.fail(GrpcError.make(GrpcError.Status.NOT_FOUND, `unknown service: "${request.service}"`)),
        onSome: (status) => Effect.succeed({ status })
      })),
  watch: (request: { readonly service: string }): Stream.Stream<HealthCheckResponse> =>
    Stream.map(health.watch(request.service), (status) => ({ status }))
})

/**
 * Health for the `GrpcServer` in context: provides `GrpcHealth` and serves
 * `grpc.health.v1.Health` on the server.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<GrpcHealth, never, GrpcServer.GrpcServer> = Layer.unwrap(
  GrpcHealth.use((health) => Effect.succeed(GrpcServer.serve(HealthDefinition, handlers(health))))
).pipe(Layer.provideMerge(Layer.effect(GrpcHealth, make)))
