/**
 * The gRPC status code a call ended with, as seen from its Exit: shared by
 * tracing and metrics on both sides.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Cause, Exit, Option } from "effect"
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
 * A server call's code, as runHandler sends it: a defect is INTERNAL; an
 * interruption is DEADLINE_EXCEEDED when the call's deadline has passed,
 * otherwise CANCELLED (or UNAVAILABLE when shutdown forced it, which the
 * client rarely sees).
 */
export const serverCode = (exit: Exit.Exit<unknown, unknown>, deadline: Option.Option<Date>): grpc.status => {
  if (Exit.isSuccess(exit)) return grpc.status.OK
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error)) return isGrpcError(error.value) ? error.value.code : grpc.status.UNKNOWN
  if (Cause.hasDies(exit.cause)) return grpc.status.INTERNAL
  return Option.isSome(deadline) && deadline.value.getTime() <= Date.now() ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED
}

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
