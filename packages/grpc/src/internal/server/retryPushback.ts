/**
 * `google.rpc.RetryInfo` as gRFC A6 server pushback.
 *
 * A6 clients (grpc-js, grpc-go, grpc-java) time their next attempt from the
 * `grpc-retry-pushback-ms` trailer only; `RetryInfo` in the rich error
 * details (`grpc-status-details-bin`) is read by application code, not by
 * their retry machinery, and a grpc-js client cannot even see it per attempt
 * (interceptors and filters sit above RetryingCall). So a handler that fails
 * with a `RetryInfo` detail also sends the equivalent pushback, unless it set
 * one itself. Runs on the failure path only, and decodes only when details
 * are present.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Option } from "effect"
import * as ErrorDetails from "../../ErrorDetails.js"
import type { GrpcError } from "../../GrpcError.js"

const pushbackKey = "grpc-retry-pushback-ms"

/**
 * The trailers of `error` to send: its own metadata, or, when its details
 * carry a `RetryInfo` and no pushback was set (on the error or in `trailers`,
 * those set with `CallContext.setTrailers`), a copy with the pushback added.
 * The error's metadata is never changed: the same error may be a constant,
 * or an upstream's error passed on.
 */
export const withRetryPushback = (error: GrpcError, trailers: grpc.Metadata | undefined): grpc.Metadata => {
  const metadata = error.metadata
  if (
    metadata.get(ErrorDetails.metadataKey).length === 0 || metadata.get(pushbackKey).length > 0 ||
    (trailers !== undefined && trailers.get(pushbackKey).length > 0)
  ) return metadata
  const delay = Option.getOrUndefined(ErrorDetails.find(error, "RetryInfo"))?.retryDelay
  if (delay === undefined) return metadata
  const ms = Number(delay.seconds) * 1000 + Math.floor(delay.nanos / 1e6)
  if (!(ms >= 0)) return metadata
  const copy = metadata.clone()
  copy.set(pushbackKey, String(ms))
  return copy
}
