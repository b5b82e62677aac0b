/**
 * Typed gRPC service config for a client channel: load balancing, per-method
 * timeouts, `waitForReady`, retries and hedging (gRFC A6), and retry
 * throttling.
 *
 * The config is checked when the channel is made (`GrpcClient.makeChannel`
 * fails with a `ServiceConfigError` naming every problem) and handed to
 * grpc-js as its default service config (`grpc.service_config`). grpc-js then
 * does the work on the wire: it picks a backend per call attempt, retries or
 * hedges according to the method's policy, honours server pushback
 * (`grpc-retry-pushback-ms`), tells the server how many attempts came before
 * (`grpc-previous-rpc-attempts`), cancels the losing hedges, and stops every
 * attempt at the call's one deadline or when the call is cancelled.
 *
 * Method names are taken from generated definitions, so a typo is a compile
 * error: `ServiceConfig.methods(EchoDefinition, "unaryEcho")`.
 *
 * @example
 * ```ts
 * import { GrpcClient, ServiceConfig } from "@fiber-grpc/grpc"
 * import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
 *
 * const channel = GrpcClient.layerChannel("ipv4:10.0.0.1:50051,10.0.0.2:50051", {
 *   serviceConfig: {
 *     loadBalancing: "round_robin",
 *     methods: [{
 *       names: ServiceConfig.methods(EchoDefinition, "unaryEcho"),
 *       timeout: "2 seconds",
 *       retry: {
 *         maxAttempts: 3,
 *         initialBackoff: "100 millis",
 *         maxBackoff: "1 second",
 *         backoffMultiplier: 2,
 *         retryableStatusCodes: ["UNAVAILABLE"]
 *       }
 *     }],
 *     retryThrottling: { maxTokens: 100, tokenRatio: 0.1 }
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @module
 */
import * as grpc from "@grpc/grpc-js"
import { Data, Duration } from "effect"
import type { ServiceDefinition } from "./ServiceDefinition.js"

/**
 * A status code by name (`"UNAVAILABLE"`) or number (`GrpcError.Status.UNAVAILABLE`).
 *
 * @since 0.1.0
 */
export type StatusCode = keyof typeof grpc.status | grpc.status

/**
 * The methods a `MethodConfig` applies to, in the service config's own form:
 * a fully qualified service name and, optionally, one method of it (the
 * protobuf name, e.g. `UnaryEcho`). Build them with `methods` or `service`.
 * `{}` (see `allMethods`) is the default for every method of every service.
 *
 * @since 0.1.0
 */
export interface MethodName {
  /** Fully qualified service name, e.g. `grpc.examples.echo.Echo`. */
  readonly service?: string | undefined
  /** The protobuf method name, e.g. `UnaryEcho`; absent for every method of `service`. */
  readonly method?: string | undefined
}

/**
 * Retry policy (gRFC A6). An attempt is retried only when it failed with one
 * of `retryableStatusCodes` before the client received response headers or a
 * message, the deadline has not passed, `maxAttempts` is not reached, and the
 * throttle (if any) allows it. The delay before attempt n+1 is a random value
 * up to min(initialBackoff * backoffMultiplier^(n-1), maxBackoff), unless the
 * server sent `grpc-retry-pushback-ms`.
 *
 * @since 0.1.0
 */
export interface RetryPolicy {
  /** Attempts in all, first one included: 2 to 5 (grpc-js's limit, `grpc-node.retry_max_attempts_limit`). */
  readonly maxAttempts: number
  /** Upper bound of the first backoff; more than zero. */
  readonly initialBackoff: Duration.Input
  /** Largest backoff; more than zero. */
  readonly maxBackoff: Duration.Input
  /** Growth of the backoff bound per attempt; more than zero. */
  readonly backoffMultiplier: number
  /** The statuses that are retried; at least one. */
  readonly retryableStatusCodes: ReadonlyArray<StatusCode>
}

/**
 * Hedging policy (gRFC A6): send the call again every `hedgingDelay` until
 * one attempt answers, up to `maxAttempts` in flight or done. The first
 * attempt to receive response headers or a message wins; every other attempt
 * is cancelled on the wire. Only for methods that are safe to run more than once.
 *
 * @since 0.1.0
 */
export interface HedgingPolicy {
  /** Attempts in all, first one included: 2 to 5 (as for `RetryPolicy`). */
  readonly maxAttempts: number
  /** Delay between attempts; default 0 (all at once). */
  readonly hedgingDelay?: Duration.Input | undefined
  /** Statuses after which the remaining hedges still run; any other status ends the call at once. */
  readonly nonFatalStatusCodes?: ReadonlyArray<StatusCode> | undefined
}

/**
 * The config of some methods.
 *
 * @since 0.1.0
 */
export interface MethodConfig {
  /** The methods this applies to (see `methods`, `service`, `allMethods`). */
  readonly names: ReadonlyArray<MethodName>
  /** Deadline of every call of these methods, all attempts together; a caller's earlier deadline wins. */
  readonly timeout?: Duration.Input | undefined
  /**
   * Queue calls while no backend is reachable instead of failing them at once
   * with `UNAVAILABLE` (they still end at their deadline). Applied by
   * `GrpcClient` per call: grpc-js reads this field but does not act on it.
   */
  readonly waitForReady?: boolean | undefined
  /** Retry failed attempts; exclusive with `hedging`. */
  readonly retry?: RetryPolicy | undefined
  /** Send parallel attempts; exclusive with `retry`. */
  readonly hedging?: HedgingPolicy | undefined
}

/**
 * The load-balancing policy: a policy name, or a list of grpc-js
 * `loadBalancingConfig` entries (the first one grpc-js knows is used; policies
 * from `@grpc/grpc-js-xds` appear once its `register()` ran).
 *
 * @since 0.1.0
 */
export type LoadBalancing =
  | "pick_first"
  | "round_robin"
  | "weighted_round_robin"
  | ReadonlyArray<{ readonly [policy: string]: object }>

/**
 * A channel's service config.
 *
 * @since 0.1.0
 */
export interface ServiceConfig {
  /** Default `pick_first` (grpc-js's default): every call goes to one backend. */
  readonly loadBalancing?: LoadBalancing | undefined
  /** Per-method config; each method may be named once. */
  readonly methods?: ReadonlyArray<MethodConfig> | undefined
  /**
   * Retry throttling, shared by every call on the channel: each failed attempt
   * costs a token, each success returns `tokenRatio`; retries and hedges stop
   * while tokens are at or below half of `maxTokens` (at most 1000).
   */
  readonly retryThrottling?: { readonly maxTokens: number; readonly tokenRatio: number } | undefined
}

/**
 * The service config is invalid; `problems` lists each one with its path.
 *
 * @since 0.1.0
 */
export class ServiceConfigError extends Data.TaggedError("ServiceConfigError")<{
  readonly problems: ReadonlyArray<string>
}> {
  /** All problems on one line. */
  override get message(): string {
    return `invalid service config: ${this.problems.join("; ")}`
  }
}

/**
 * Names some methods of a service (at least one), checked against its
 * generated definition. Use `service` to name every method: an empty list
 * here would silently apply a retry or hedging policy to every method,
 * unsafe ones included, so it is rejected (by the type, and at runtime).
 *
 * @since 0.1.0
 */
export const methods = <S extends ServiceDefinition>(
  definition: S,
  ...keys: readonly [keyof S["methods"] & string, ...ReadonlyArray<keyof S["methods"] & string>]
): ReadonlyArray<MethodName> => {
  if (keys.length === 0) {
    throw new TypeError(
      `ServiceConfig.methods(${definition.fullName}) names no method; use ServiceConfig.service to name every method`
    )
  }
  return keys.map((key) => ({ service: definition.fullName, method: definition.methods[key]!.name }))
}

/**
 * Names every method of a service.
 *
 * @since 0.1.0
 */
export const service = (definition: ServiceDefinition): ReadonlyArray<MethodName> => [{ service: definition.fullName }]

/**
 * Names every method of every service: the default `MethodConfig`.
 *
 * @since 0.1.0
 */
export const allMethods: ReadonlyArray<MethodName> = [{}]

/**
 * Trailers a server adds to a failure to steer A6 clients (grpc-js, grpc-go,
 * grpc-java, ...): retry after `delay`, or `"never"` to stop retrying this
 * call. Pass them to `GrpcError.make(code, message, trailers)`.
 *
 * @since 0.1.0
 */
export const retryPushback = (delay: Duration.Input | "never"): grpc.Metadata => {
  const trailers = new grpc.Metadata()
  trailers.set(
    "grpc-retry-pushback-ms",
    delay === "never" ? "-1" : String(Math.round(Duration.toMillis(Duration.fromInputUnsafe(delay))))
  )
  return trailers
}
