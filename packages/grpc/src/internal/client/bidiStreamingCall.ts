/**
 * Bidi client call: the request Stream is written in the response Stream's
 * scope (see responseStream.ts), so stopping, failing or interrupting either
 * side cancels the call on the wire.
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
import { writeRequests } from "./writeRequests.js"

export const bidiStreamingCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
<E = never, R = never>(requests: Stream.Stream<Req, E, R>, options?: CallOptions): Stream.Stream<Res, GrpcError | E, R> =>
  responseStream(
    Effect.map(prepare(channel, options), (prepared) => {
      const call = channel.makeBidiStreamRequest(
        method.path,
        method.serialize,
        passBytes,
        prepared.metadata,
        prepared.options
      )
      observe(call, options)
      return call
    }),
    method.decode,
    (call: grpc.ClientDuplexStream<Req, Buffer>) => writeRequests(call, requests)
  )
