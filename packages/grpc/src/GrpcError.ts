/**
 * The gRPC status as a typed error.
 *
 * A handler fails with `GrpcError` to end its call with that status; a client
 * call fails with `GrpcError` when the server (or the channel) ended it with a
 * non-OK status. The same value crosses both sides, so a relay can pass an
 * upstream failure through unchanged.
 *
 * @since 0.1.0
 * @module
 */
import * as grpc from "@grpc/grpc-js"
import { Data, Predicate } from "effect"

/**
 * The 17 gRPC status codes (the same numbers as `@grpc/grpc-js`'s `status`).
 *
 * @since 0.1.0
 */
export const Status = grpc.status

/**
 * A gRPC status code (grpc-js's `status` enum).
 *
 * @since 0.1.0
 */
export type Status = grpc.status

/**
 * Request and response metadata (headers and trailers). Keys ending in `-bin`
 * carry `Buffer` values.
 *
 * @since 0.1.0
 */
export const Metadata = grpc.Metadata

/**
 * grpc-js call metadata (headers or trailers).
 *
 * @since 0.1.0
 */
export type Metadata = grpc.Metadata

/**
 * The canonical upper-case name of a status code, e.g. `"DEADLINE_EXCEEDED"`.
 *
 * @since 0.1.0
 */
export const statusName = (code: Status): string => Status[code] ?? `UNKNOWN_CODE_${code}`

/**
 * A gRPC status other than OK, with its message and trailing metadata.
 *
 * @example
 * ```ts
 * import { GrpcError } from "@fiber-grpc/grpc"
 *
 * const notFound = GrpcError.make(GrpcError.Status.NOT_FOUND, "no such user")
 * ```
 *
 * @since 0.1.0
 */
export class GrpcError extends Data.TaggedError("GrpcError")<{
  readonly code: Status
  readonly message: string
  readonly metadata: Metadata
}> {
  /** `"DEADLINE_EXCEEDED"` and so on. */
  get codeName(): string {
    return statusName(this.code)
  }

  /**
   * `GrpcError [UNAVAILABLE]`: the code name is part of the name so that an
   * uncaught error's log line and stack trace say which status it was. (The
   * `message` stays the status message alone, which is what a relay passes on.)
   */
  override get name(): string {
    return this.code === undefined ? "GrpcError" : `GrpcError [${this.codeName}]`
  }

  /** `GrpcError(CODE_NAME): message`. */
  override toString(): string {
    return `GrpcError(${this.codeName}): ${this.message}`
  }
}

/**
 * Builds a `GrpcError`. `metadata` becomes the call's trailers.
 *
 * @since 0.1.0
 */
export const make = (code: Status, message: string, metadata?: Metadata): GrpcError =>
  new GrpcError({ code, message, metadata: metadata ?? new grpc.Metadata() })

/**
 * Whether a value is a `GrpcError`.
 *
 * @since 0.1.0
 */
export const isGrpcError = (u: unknown): u is GrpcError => Predicate.isTagged(u, "GrpcError") && u instanceof GrpcError

/**
 * Converts a grpc-js `ServiceError` / `StatusObject` (what grpc-js hands a
 * client when a call ends) into a `GrpcError`.
 *
 * @since 0.1.0
 */
export const fromStatus = (status: {
  readonly code: Status
  readonly details: string
  readonly metadata?: Metadata | null | undefined
}): GrpcError => make(status.code, status.details, status.metadata ?? undefined)
