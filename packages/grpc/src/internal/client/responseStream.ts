/**
 * The response Stream of a server-streaming or bidi client call.
 *
 * grpc-js's client call is an object-mode Readable, read through a
 * `MessageReader` (see messageReader.ts: a small buffer, the call paused when
 * it fills, the consumer woken once per batch). The Stream ends once grpc-js
 * has delivered every message (`'end'`) and the status (`'status'`); a
 * non-OK status fails it with a `GrpcError` after the messages that preceded
 * it.
 *
 * If the consumer stops early (`Stream.take`), fails, or is interrupted, the
 * Stream's scope closes and the call is cancelled on the wire. For bidi calls
 * the request writer runs in the same scope; if the request Stream fails, the
 * call is cancelled and the response Stream fails with that error at once.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Cause, Channel, Effect, Exit, Scope, Stream } from "effect"
import * as GrpcError from "../../GrpcError.js"
import { MessageReader, type ReadableCall } from "../messageReader.js"
import { cancelOnWire } from "./cancel.js"

export interface ClientReadableCall extends ReadableCall {
  cancel(): void
}

export const responseStream = <Call extends ClientReadableCall, A, E = never, R = never>(
  start: Effect.Effect<Call, GrpcError.GrpcError>,
  writer?: (call: Call) => Effect.Effect<void, E, R>
): Stream.Stream<A, GrpcError.GrpcError | E, R> =>
  Stream.fromChannel(Channel.fromTransform((_, scope) =>
    Effect.flatMap(start, (call) => {
      const reader = new MessageReader<A, GrpcError.GrpcError | E>(call)
      let ended = false
      let status: grpc.StatusObject | undefined
      const endIfDone = () => {
        if (ended && status !== undefined) {
          reader.end(status.code === 0 ? Cause.done() : Effect.fail(GrpcError.fromStatus(status)))
        }
      }
      call.on("end", () => {
        ended = true
        endIfDone()
      })
      call.on("status", (s: grpc.StatusObject) => {
        status = s
        endIfDone()
      })
      // 'status' carries the error too; this only keeps Node from treating
      // grpc-js's 'error' event as unhandled.
      call.on("error", () => {})

      const cancelUnlessDone = Effect.sync(() => {
        if (status === undefined) cancelOnWire(call)
      })
      const startWriter = writer === undefined ? Effect.void : Effect.forkIn(
        writer(call).pipe(Effect.onExit((exit) =>
          Exit.isFailure(exit) && !Exit.hasInterrupts(exit)
            ? Effect.sync(() => {
              reader.fail(Effect.failCause(exit.cause))
              cancelOnWire(call)
            })
            : Effect.void
        )),
        scope,
        { startImmediately: true }
      )
      return Scope.addFinalizer(scope, cancelUnlessDone).pipe(Effect.andThen(startWriter), Effect.as(reader.pull))
    })
  ))
