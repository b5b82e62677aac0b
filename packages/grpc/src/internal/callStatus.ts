/**
 * The gRPC status code a call ended with, as seen from its Exit, and whether
 * it is an error: shared by tracing and metrics on both sides.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Cause, Context, Exit, Option } from "effect"
import { isGrpcError } from "../GrpcError.js"

const codeOfFailure = (cause: Cause.Cause<unknown>): grpc.status | undefined => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) return isGrpcError(error.value) ? error.value.code : grpc.status.UNKNOWN
  return Cause.hasDies(cause) ? grpc.status.UNKNOWN : undefined
}

/**
 * A client call's code: its status, or CANCELLED when the caller interrupted
 * it (the call was cancelled on the wire).
 */
export const clientCode = (exit: Exit.Exit<unknown, unknown>): grpc.status =>
  Exit.isSuccess(exit) ? grpc.status.OK : codeOfFailure(exit.cause) ?? grpc.status.CANCELLED

/**
 * A client streaming call's code: as `clientCode`, except that a Stream the
 * consumer stopped early (it ends without error, but no status came back)
 * was cancelled on the wire.
 */
export const clientStreamCode = (exit: Exit.Exit<unknown, unknown>, trailers: unknown): grpc.status =>
  Exit.isSuccess(exit) && trailers === undefined ? grpc.status.CANCELLED : clientCode(exit)

/**
 * Whether the server is forcing its shutdown (past the grace period,
 * interrupting the handlers still running). GrpcServer provides it once per
 * registered service, in the context its handlers (and their middleware) run
 * with, so telemetry records the status the client was sent.
 */
export const ForcingShutdown = Context.Reference<() => boolean>("@fiber-grpc/grpc/GrpcServer/ForcingShutdown", {
  defaultValue: () => () => false
})

/**
 * How early, by the wall clock, grpc-js's deadline timer can fire. grpc-js
 * sets a call's deadline to `Date.now() + timeout` and its timer with
 * `setTimeout(timeout)`, which runs on Node's monotonic millisecond clock:
 * the two round apart, and the timer can fire while `Date.now()` still reads
 * one millisecond before the deadline (a fifth of the calls with deadlines of
 * a few ms here; never two).
 */
const timerEarlyMillis = 1

/**
 * The code of a server call that was interrupted: DEADLINE_EXCEEDED when its
 * deadline has passed (grpc-js itself ended the call with it), UNAVAILABLE
 * when a forced shutdown interrupted it, otherwise CANCELLED.
 */
export const interruptedCode = (deadline: Option.Option<Date>, forcing: boolean): grpc.status =>
  Option.isSome(deadline) && deadline.value.getTime() <= Date.now() + timerEarlyMillis
    ? grpc.status.DEADLINE_EXCEEDED
    : forcing
    ? grpc.status.UNAVAILABLE
    : grpc.status.CANCELLED

/**
 * A server call's code, as runHandler sends it (see `failureStatus`): a
 * `GrpcError`'s code, INTERNAL for a defect, `interruptedCode` for an
 * interruption.
 */
export const serverCode = (exit: Exit.Exit<unknown, unknown>, deadline: Option.Option<Date>, forcing: boolean): grpc.status => {
  if (Exit.isSuccess(exit)) return grpc.status.OK
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error)) return isGrpcError(error.value) ? error.value.code : grpc.status.UNKNOWN
  if (Cause.hasDies(exit.cause)) return grpc.status.INTERNAL
  return interruptedCode(deadline, forcing)
}

/** The codes the conventions count as errors on a server span. */
const serverErrors = new Set<grpc.status>([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS
])

/**
 * Whether a status code is an error (a span's error status, `error.type`),
 * per the conventions: on the server only the server-error codes, on the
 * client every code but OK.
 */
export const isError = (code: grpc.status, kind: "server" | "client"): boolean =>
  kind === "client" ? code !== grpc.status.OK : serverErrors.has(code)

/** `host:port`, `[v6]:port` or `ipv4:host:port` into its parts (string ops: this runs per call). */
export const splitAddress = (address: string): { host: string; port: number | undefined } => {
  let bare = address
  if (bare.startsWith("ipv4:") || bare.startsWith("ipv6:")) bare = bare.slice(5)
  else if (bare.startsWith("dns:")) bare = bare.slice(bare.startsWith("dns:///") ? 7 : 4)
  const colon = bare.lastIndexOf(":")
  const port = colon < 0 ? NaN : Number(bare.slice(colon + 1))
  if (colon < 0 || !Number.isInteger(port) || bare.slice(colon + 1) === "" || (bare.indexOf(":") !== colon && !bare.startsWith("["))) {
    return { host: bare, port: undefined }
  }
  const host = bare.slice(0, colon)
  return { host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host, port }
}
