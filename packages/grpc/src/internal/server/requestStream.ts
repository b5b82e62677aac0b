/**
 * The request Stream of a client-streaming or bidi call.
 *
 * grpc-js's server call is an object-mode Readable that asks the HTTP/2
 * stream for the next message only when its own buffer (16 messages) has
 * room. Reading it on demand from the handler's pulls therefore gives
 * backpressure all the way to the client's flow-control window: a handler
 * that falls behind pauses the call, and the server never buffers without
 * bound.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import * as NodeStream from "@effect/platform-node-shared/NodeStream"
import { Function, type Stream } from "effect"
import * as GrpcError from "../../GrpcError.js"

export const requestStream = <Req>(
  call: grpc.ServerReadableStream<Req, unknown> | grpc.ServerDuplexStream<Req, unknown>
): Stream.Stream<Req, GrpcError.GrpcError> =>
  NodeStream.fromReadable<Req, GrpcError.GrpcError>({
    evaluate: Function.constant(call),
    onError: requestStreamFailed,
    // At most one Readable buffer's worth per pull, so the handler sees
    // messages as they arrive instead of in large batches.
    chunkSize: 16,
    // Destroying a duplex call would also end its response side.
    closeOnDone: false
  })

const requestStreamFailed = (cause: unknown): GrpcError.GrpcError =>
  GrpcError.make(GrpcError.Status.CANCELLED, `Request stream failed: ${cause instanceof Error ? cause.message : String(cause)}`)
