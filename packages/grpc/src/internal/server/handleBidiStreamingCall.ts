/**
 * Bidi streaming: `(requests: Stream<Request>, ctx) => Stream<Response>`,
 * with backpressure on both sides (see requestStream.ts and writeAll).
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import type { Stream } from "effect"
import type { CallContext } from "../../CallContext.js"
import type { GrpcError } from "../../GrpcError.js"
import { requestStream } from "./requestStream.js"
import { writeStream } from "../writeAll.js"
import { endStream, type HandlerRuntime, runHandler } from "./runHandler.js"

export const handleBidiStreamingCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (
    requests: Stream.Stream<Req, GrpcError>,
    ctx: CallContext["Service"]
  ) => Stream.Stream<Res, GrpcError, CallContext>,
  decode: (bytes: Buffer) => Req
): grpc.handleBidiStreamingCall<Buffer, Res> => {
  const start = (call: grpc.ServerDuplexStream<Buffer, Res>, ctx: CallContext["Service"]) =>
    writeStream(call, handler(requestStream(call, decode), ctx))
  return (call) => runHandler(runtime, call, start, endStream, call)
}
