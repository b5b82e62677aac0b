/**
 * `google.rpc.RetryInfo` as gRFC A6 server pushback.
 *
 * A6 clients (grpc-js, grpc-go, grpc-java) time their next attempt from the
 * `grpc-retry-pushback-ms` trailer only; `RetryInfo` in the rich error
 * details (`grpc-status-details-bin`) is read by application code, not by
 * their retry machinery, and a grpc-js client cannot even see it per attempt
 * (interceptors and filters sit above RetryingCall). So a handler that fails
 * with a `RetryInfo` detail also sends the equivalent pushback, unless it set
 * one itself. Runs on the failure path only, and only when details are present.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { RetryInfo } from "../../generated/google/rpc/error_details.js"
import { Status } from "../../generated/google/rpc/status.js"

const retryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

export const addRetryPushback = (trailers: grpc.Metadata): void => {
  const details = trailers.get("grpc-status-details-bin")
  if (details.length === 0 || trailers.get("grpc-retry-pushback-ms").length > 0) return
  const bytes = details[0]
  if (typeof bytes === "string") return
  try {
    for (const any of Status.decode(bytes).details) {
      if (any.typeUrl !== retryInfoType) continue
      const delay = RetryInfo.decode(any.value).retryDelay
      if (delay !== undefined) {
        const ms = Number(delay.seconds) * 1000 + Math.floor(delay.nanos / 1e6)
        if (ms >= 0) trailers.set("grpc-retry-pushback-ms", String(ms))
      }
      return
    }
  } catch {
    // Malformed details are sent as they are; there is no pushback to derive.
  }
}
