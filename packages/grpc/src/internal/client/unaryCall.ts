/**
 * Unary client call: an Effect whose interruption cancels the call.
 *
 * The whole call is one `Effect.callback` in the calling fiber (read for its
 * deadline and the server call it may follow), with closures passed straight
 * to grpc-js: this is the client's per-call hot path.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import type * as GrpcError from "../../GrpcError.js"
import { withoutCallerStack } from "./callerStack.js"
import { cancelOnWire } from "./cancel.js"
import { type CallOptions, channelClosed, observe, prepareIn } from "./callOptions.js"
import type { MethodCodec } from "./codec.js"
import { passBytes } from "../codec.js"
import { responseExit } from "./singleResponse.js"

export const unaryCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
(request: Req, options?: CallOptions): Effect.Effect<Res, GrpcError.GrpcError> =>
  Effect.withFiber((fiber) => {
    const prepared = prepareIn(fiber, channel, options)
    if (prepared === undefined) return channelClosed
    return Effect.callback<Res, GrpcError.GrpcError>((resume) => {
      let response: Buffer | undefined
      const call = withoutCallerStack(() =>
        channel.makeUnaryRequest(
          method.path,
          method.serialize,
          passBytes,
          request,
          prepared.metadata,
          prepared.options,
          // grpc-js calls back with the message just before it emits 'status'.
          (_error, value) => {
            response = value
          }
        )
      )
      observe(call, options)
      // Completing on 'status' rather than in the callback means the
      // trailers (and `onTrailers`) have been seen when the caller resumes.
      call.on("status", (status: grpc.StatusObject) => resume(responseExit(status, response, method.decode)))
      return Effect.sync(() => cancelOnWire(call))
    })
  })
