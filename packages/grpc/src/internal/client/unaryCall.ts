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

export const unaryCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
(request: Req, options?: CallOptions): Effect.Effect<Res, GrpcError.GrpcError> =>
  Effect.flatMap(prepare(options), (prepared) =>
    Effect.callback<Res, GrpcError.GrpcError>((resume) => {
      let response: Res | undefined
      const call = channel.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        prepared.metadata,
        prepared.options,
        (_error, value) => {
          response = value
        }
      )
      observe(call, options)
      // grpc-js calls back before it emits 'status'; completing on 'status'
      // means the trailers have been seen when the Effect resumes.
      call.on("status", (status: grpc.StatusObject) =>
        // grpc-js boundary: an OK status means its callback delivered the response.
        resume(status.code === 0 ? Effect.succeed(response as Res) : Effect.fail(GrpcError.fromStatus(status))))
      return Effect.sync(() => cancelOnWire(call))
    }))
