/**
 * Server streaming: `(request, ctx) => Stream<Response>`. Responses are
 * written as the Stream produces them, waiting for `'drain'` whenever grpc-js
 * reports its buffer full.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect, type Stream } from "effect"
import type { CallContext } from "../../CallContext.js"
import type { GrpcError } from "../../GrpcError.js"
import { decodeRequest, undecodable, undecodableRequest } from "./decodeRequest.js"
import { writeStream } from "../writeAll.js"
import { endStream, type HandlerRuntime, runHandler } from "./runHandler.js"

export const handleServerStreamingCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (request: Req, ctx: CallContext["Service"]) => Stream.Stream<Res, GrpcError, CallContext>,
  decode: (bytes: Buffer) => Req
): grpc.handleServerStreamingCall<Buffer, Res> => {
  const start = (call: grpc.ServerWritableStream<Buffer, Res>, ctx: CallContext["Service"]) => {
    const request = decodeRequest(decode, call.request)
    return request === undecodable ? Effect.fail(undecodableRequest()) : writeStream(call, handler(request, ctx))
  }
  return (call) => runHandler(runtime, call, start, endStream, call)
}
