/**
 * Unary: `(request, ctx) => Effect<Response>`. The response and trailers go
 * through grpc-js's callback.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import type { CallContext } from "../../CallContext.js"
import type { GrpcError } from "../../GrpcError.js"
import { decodeRequest, undecodable, undecodableRequest } from "./decodeRequest.js"
import { answer, type HandlerRuntime, runHandler } from "./runHandler.js"

export const handleUnaryCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (request: Req, ctx: CallContext["Service"]) => Effect.Effect<Res, GrpcError, CallContext>,
  decode: (bytes: Buffer) => Req
): grpc.handleUnaryCall<Buffer, Res> => {
  const start = (call: grpc.ServerUnaryCall<Buffer, Res>, ctx: CallContext["Service"]) => {
    const request = decodeRequest(decode, call.request)
    return request === undecodable ? Effect.fail(undecodableRequest()) : handler(request, ctx)
  }
  return (call, callback) => runHandler(runtime, call, start, answer, callback)
}
