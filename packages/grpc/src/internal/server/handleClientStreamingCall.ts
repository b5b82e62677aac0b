/**
 * Client streaming: `(requests: Stream<Request>, ctx) => Effect<Response>`.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import type { Effect, Stream } from "effect"
import type { CallContext } from "../../CallContext.js"
import type { GrpcError } from "../../GrpcError.js"
import { requestStream } from "./requestStream.js"
import { answer, type HandlerRuntime, runHandler } from "./runHandler.js"

export const handleClientStreamingCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (
    requests: Stream.Stream<Req, GrpcError>,
    ctx: CallContext["Service"]
  ) => Effect.Effect<Res, GrpcError, CallContext>,
  decode: (bytes: Buffer) => Req
): grpc.handleClientStreamingCall<Buffer, Res> => {
  const start = (call: grpc.ServerReadableStream<Buffer, Res>, ctx: CallContext["Service"]) =>
    handler(requestStream(call, decode), ctx)
  return (call, callback) => runHandler(runtime, call, start, answer, callback)
}
