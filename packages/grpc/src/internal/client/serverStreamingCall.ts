/**
 * Server-streaming client call: a Stream of responses (see responseStream.ts).
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect, type Stream } from "effect"
import type { GrpcError } from "../../GrpcError.js"
import { type CallOptions, observe, prepare } from "./callOptions.js"
import type { MethodCodec } from "./codec.js"
import { passBytes } from "../codec.js"
import { responseStream } from "./responseStream.js"

export const serverStreamingCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
(request: Req, options?: CallOptions): Stream.Stream<Res, GrpcError> =>
  responseStream(Effect.map(prepare(channel, options), (prepared) => {
    const call = channel.makeServerStreamRequest(
      method.path,
      method.serialize,
      passBytes,
      request,
      prepared.metadata,
      prepared.options
    )
    observe(call, options)
    return call
  }), method.decode)
