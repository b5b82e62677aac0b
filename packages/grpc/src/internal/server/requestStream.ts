/**
 * The request Stream of a client-streaming or bidi call.
 *
 * grpc-js's server call is an object-mode Readable that asks the HTTP/2
 * stream for the next message only when its own buffer (16 messages) has
 * room. The Stream reads it through a `MessageReader` (see messageReader.ts),
 * which pauses the call whenever 16 messages wait for the handler: a handler
 * that falls behind pauses the call, backpressure reaches the client's
 * flow-control window, and the server never buffers without bound.
 *
 * The call is read from the Stream's first run on (a handler that never runs
 * it reads nothing). A run that stops early (`Stream.take`) pauses the call;
 * a later run of the same Stream continues where it stopped. Runs take turns:
 * two at once would each get some of the messages.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Cause, Channel, Effect, Scope, Stream } from "effect"
import * as GrpcError from "../../GrpcError.js"
import { MessageReader } from "../messageReader.js"

export const requestStream = <Req>(
  call: grpc.ServerReadableStream<Req, unknown> | grpc.ServerDuplexStream<Req, unknown>
): Stream.Stream<Req, GrpcError.GrpcError> => {
  let reader: MessageReader<Req, GrpcError.GrpcError> | undefined
  const open = (): MessageReader<Req, GrpcError.GrpcError> => {
    const r = new MessageReader<Req, GrpcError.GrpcError>(call)
    if (call.readableEnded) r.end(Cause.done())
    call.on("end", () => r.end(Cause.done()))
    call.on("error", (cause: unknown) => r.end(Effect.fail(requestStreamFailed(cause))))
    return r
  }
  return Stream.fromChannel(Channel.fromTransform((_, scope) =>
    Effect.suspend(() => {
      const r = reader ??= open()
      return Effect.as(Scope.addFinalizer(scope, Effect.sync(() => r.stop())), r.pull)
    })
  ))
}

const requestStreamFailed = (cause: unknown): GrpcError.GrpcError =>
  GrpcError.make(GrpcError.Status.CANCELLED, `Request stream failed: ${cause instanceof Error ? cause.message : String(cause)}`)
