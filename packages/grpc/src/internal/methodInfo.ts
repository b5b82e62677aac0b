/**
 * The `MethodInfo` middleware sees, computed once per method.
 *
 * @internal
 */
import type { CallKind, MethodInfo } from "../GrpcMiddleware.js"

export const kindOf = (method: { readonly requestStream: boolean; readonly responseStream: boolean }): CallKind =>
  method.requestStream
    ? method.responseStream ? "bidi" : "clientStreaming"
    : method.responseStream
    ? "serverStreaming"
    : "unary"

export const methodInfo = (path: string, kind: CallKind): MethodInfo => {
  const slash = path.lastIndexOf("/")
  return { path, service: path.slice(1, slash), name: path.slice(slash + 1), kind }
}

