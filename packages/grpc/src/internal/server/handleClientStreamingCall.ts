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
import { failureStatus, type HandlerRuntime, runHandler, trailersOf } from "./runHandler.js"

export const handleClientStreamingCall = <Req, Res>(
  runtime: HandlerRuntime,
  handler: (
    requests: Stream.Stream<Req, GrpcError>,
    ctx: CallContext["Service"]
  ) => Effect.Effect<Res, GrpcError, CallContext>
): grpc.handleClientStreamingCall<Req, Res> =>
(call, callback) =>
  runHandler(runtime, call, (ctx) => handler(requestStream(call), ctx), (exit, ctx) => {
    if (exit._tag === "Success") callback(null, exit.value, trailersOf(ctx))
    else callback(failureStatus(runtime, exit.cause, ctx))
  })
