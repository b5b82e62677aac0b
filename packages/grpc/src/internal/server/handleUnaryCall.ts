/**
 * Unary: `(request, ctx) => Effect<Response>`. The response and trailers go
 * through grpc-js's callback.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import type { Effect } from "effect"
import type { CallContext } from "../../CallContext.js"
import type { GrpcError } from "../../GrpcError.js"
import { answer, type HandlerRuntime, runHandler } from "./runHandler.js"

export const handleUnaryCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (request: Req, ctx: CallContext["Service"]) => Effect.Effect<Res, GrpcError, CallContext>
): grpc.handleUnaryCall<Req, Res> => {
  const start = (call: grpc.ServerUnaryCall<Req, Res>, ctx: CallContext["Service"]) => handler(call.request, ctx)
  return (call, callback) => runHandler(runtime, call, start, answer, callback)
}
