/**
 * Unary client call: an Effect whose interruption cancels the call.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import * as GrpcError from "../../GrpcError.js"
import { cancelOnWire } from "./cancel.js"
import { type CallOptions, observe, prepare } from "./callOptions.js"
import type { MethodCodec } from "./codec.js"
import { singleResponse } from "./singleResponse.js"

export const unaryCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
(request: Req, options?: CallOptions): Effect.Effect<Res, GrpcError.GrpcError> =>
  Effect.flatMap(prepare(channel, options), (prepared) =>
    Effect.callback<Res, GrpcError.GrpcError>((resume) => {
      const response = singleResponse<Res>(resume)
      const call = channel.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        prepared.metadata,
        prepared.options,
        response.callback
      )
      observe(call, options)
      call.on("status", response.onStatus)
      return Effect.sync(() => cancelOnWire(call))
    }))
