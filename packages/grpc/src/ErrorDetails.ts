/**
 * Rich error details: the `google.rpc.Status` model (AIP-193), carried in the
 * `grpc-status-details-bin` trailer, with the standard detail messages of
 * `google/rpc/error_details.proto` typed on both sides.
 *
 * - A handler fails with `ErrorDetails.make(code, message, details)`: a plain
 *   `GrpcError` whose trailers hold the encoded `google.rpc.Status` with that
 *   same code and message, and each detail packed in a `google.protobuf.Any`.
 * - A client reads them back with `ErrorDetails.get(error)` (all of them) or
 *   `ErrorDetails.find(error, "BadRequest")` (one kind). Details sent by
 *   grpc-go (`status.WithDetails`), grpcio (`rpc_status.to_status`) or any
 *   peer that writes the same trailer decode the same way.
 * - The details live in the error's metadata, so a relay that fails with the
 *   upstream `GrpcError` passes them through unchanged.
 *
 * **When the status in the details disagrees with the call's status.** gRPC
 * does not specify it (grpc/grpc#24007) and implementations differ (grpc-go
 * lets the details win). Here `grpc-status` and `grpc-message` always win:
 * `GrpcError.code` and `message` are what the call ended with. Details whose
 * embedded code differs from that code describe some other error, so `get`
 * ignores them (returns no details); a differing message alone is accepted
 * (proxies may rewrite `grpc-message`). `make` cannot produce a mismatch, and
 * the server sends whatever trailers a handler set, untouched.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ErrorDetails, GrpcError } from "@fiber-grpc/grpc"
 *
 * // server
 * Effect.fail(ErrorDetails.make(GrpcError.Status.INVALID_ARGUMENT, "bad name", [
 *   ErrorDetails.detail("BadRequest", { fieldViolations: [{ field: "name", description: "empty" }] })
 * ]))
 *
 * // client
 * Effect.catchTag(call, "GrpcError", (error) =>
 *   Effect.log(ErrorDetails.find(error, "BadRequest")))
 * ```
 *
 * @since 0.1.0
 * @module
 */
import { Option } from "effect"
import { Any } from "./generated/google/protobuf/any.js"
import {
  BadRequest,
  DebugInfo,
  ErrorInfo,
  Help,
  LocalizedMessage,
  PreconditionFailure,
  QuotaFailure,
  RequestInfo,
  ResourceInfo,
  RetryInfo
} from "./generated/google/rpc/error_details.js"
import { Status as StatusProto } from "./generated/google/rpc/status.js"
import * as GrpcError from "./GrpcError.js"

/**
 * The trailer that carries the serialized `google.rpc.Status`.
 *
 * @since 0.1.0
 */
export const metadataKey = "grpc-status-details-bin"

/** The codec of each standard detail, by its short name. */
const codecs = {
  ErrorInfo,
  RetryInfo,
  DebugInfo,
  QuotaFailure,
  PreconditionFailure,
  BadRequest,
  RequestInfo,
  ResourceInfo,
  Help,
  LocalizedMessage
}

/**
 * The standard detail messages of `google/rpc/error_details.proto`, by name.
 * Their types are ts-proto's, documented by the .proto file; to name one, use
 * `ErrorDetails.StandardDetails["BadRequest"]`.
 *
 * @since 0.1.0
 */
export interface StandardDetails {
  /** Why the error happened: a machine-readable reason, a domain and metadata. */
  readonly ErrorInfo: ErrorInfo
  /** When the client may retry. */
  readonly RetryInfo: RetryInfo
  /** Stack entries and detail, for debugging (do not send to untrusted clients). */
  readonly DebugInfo: DebugInfo
  /** Which quota check failed. */
  readonly QuotaFailure: QuotaFailure
  /** Which preconditions failed. */
  readonly PreconditionFailure: PreconditionFailure
  /** Which request fields were invalid, and why. */
  readonly BadRequest: BadRequest
  /** The request id and serving data to quote in a bug report. */
  readonly RequestInfo: RequestInfo
  /** The resource the error is about. */
  readonly ResourceInfo: ResourceInfo
  /** Links to documentation. */
  readonly Help: Help
  /** A message localized for the user. */
  readonly LocalizedMessage: LocalizedMessage
}

/**
 * One detail: a standard message tagged with its name, or any other message
 * left encoded (`_tag: "Unknown"`, with its `Any` type URL).
 *
 * @since 0.1.0
 */
export type Detail =
  | { readonly [K in keyof StandardDetails]: { readonly _tag: K; readonly value: StandardDetails[K] } }[keyof StandardDetails]
  | { readonly _tag: "Unknown"; readonly typeUrl: string; readonly value: Uint8Array }

/**
 * A standard detail. Fields left out take their proto defaults.
 *
 * @since 0.1.0
 */
export const detail = <K extends keyof StandardDetails>(
  tag: K,
  value: Parameters<(typeof codecs)[K]["fromPartial"]>[0]
): Detail =>
  // The codec of `tag` builds the value of `tag`'s type; TypeScript cannot
  // correlate the two through the lookup table.
  ({ _tag: tag, value: (codecs[tag].fromPartial as (v: unknown) => StandardDetails[K])(value) }) as Detail

const typeUrlPrefix = "type.googleapis.com/google.rpc."

const pack = (d: Detail): Any =>
  d._tag === "Unknown"
    ? { typeUrl: d.typeUrl, value: Buffer.from(d.value) }
    : {
      typeUrl: typeUrlPrefix + d._tag,
      // Each tag's value was built by that tag's codec (see `detail`).
      value: Buffer.from((codecs[d._tag].encode as (v: unknown) => { finish(): Uint8Array })(d.value).finish())
    }

const unpack = (any: Any): Detail => {
  const slash = any.typeUrl.lastIndexOf("/")
  const name = any.typeUrl.slice(slash + 1)
  if (name.startsWith("google.rpc.")) {
    const tag = name.slice("google.rpc.".length)
    if (Object.hasOwn(codecs, tag)) {
      try {
        const codec = codecs[tag as keyof typeof codecs] as { decode(b: Uint8Array): unknown }
        // `tag` names the codec that decoded `value`.
        return { _tag: tag, value: codec.decode(any.value) } as Detail
      } catch {
        // Malformed: kept encoded, like a type we do not know.
      }
    }
  }
  return { _tag: "Unknown", typeUrl: any.typeUrl, value: new Uint8Array(any.value) }
}

/**
 * A `GrpcError` with rich details: its trailers carry `google.rpc.Status`
 * `{ code, message, details }` in `grpc-status-details-bin`, next to any
 * `metadata` given.
 *
 * @since 0.1.0
 */
export const make = (
  code: GrpcError.Status,
  message: string,
  details: ReadonlyArray<Detail>,
  metadata?: GrpcError.Metadata
): GrpcError.GrpcError => {
  const trailers = metadata?.clone() ?? new GrpcError.Metadata()
  trailers.set(metadataKey, Buffer.from(StatusProto.encode({ code, message, details: details.map(pack) }).finish()))
  return GrpcError.make(code, message, trailers)
}

/**
 * The `google.rpc.Status` in an error's trailers, decoded: `None` when there
 * is none, it cannot be decoded, or its code differs from the error's code.
 *
 * @since 0.1.0
 */
export const status = (
  error: GrpcError.GrpcError
): Option.Option<{ readonly code: number; readonly message: string; readonly details: ReadonlyArray<Detail> }> => {
  const value = error.metadata.get(metadataKey)[0]
  if (value === undefined || typeof value === "string") return Option.none()
  try {
    const decoded = StatusProto.decode(value)
    if (decoded.code !== error.code) return Option.none()
    return Option.some({ code: decoded.code, message: decoded.message, details: decoded.details.map(unpack) })
  } catch {
    return Option.none()
  }
}

/**
 * Every detail of an error, in the order sent; empty when it has none (see
 * `status` for when details are ignored).
 *
 * @since 0.1.0
 */
export const get = (error: GrpcError.GrpcError): ReadonlyArray<Detail> =>
  Option.match(status(error), { onNone: () => [], onSome: (s) => s.details })

/**
 * The first detail of one standard kind, e.g. `find(error, "RetryInfo")`.
 *
 * @since 0.1.0
 */
export const find = <K extends keyof StandardDetails>(
  error: GrpcError.GrpcError,
  tag: K
): Option.Option<StandardDetails[K]> => {
  for (const d of get(error)) {
    // `_tag` equal to `tag` means `value` is `StandardDetails[K]`.
    if (d._tag === tag) return Option.some(d.value as StandardDetails[K])
  }
  return Option.none()
}
