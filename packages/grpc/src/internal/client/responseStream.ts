/**
 * The response Stream of a server-streaming or bidi client call.
 *
 * The call is read through grpc-js's `push` and `_read` (../callReader.ts),
 * asking for messages while fewer than 16 are held, so that grpc-js stops
 * reading from HTTP/2 and flow control holds the server back when the
 * consumer falls behind. The Stream ends once grpc-js has delivered every
 * message (`push(null)`) and the status (`'status'`); a non-OK status fails
 * it with a `GrpcError` after the messages that preceded it.
 *
 * A waiting consumer is woken from a microtask, at most once however many
 * messages are pushed before it runs. In grpc-js 1.14 that is usually one
 * message: its client passes each received message through a promise (the
 * filter stack's `receiveMessage`, in resolving-call.js) and reads the next
 * one only after that, so a consumer that keeps up is resumed once per
 * message; one that falls behind takes what has queued as one chunk.
 * Waking it from a later macrotask (`setImmediate`) instead gathered 2-3
 * messages per pull at benchmark rates but saved no CPU (same-process A/B,
 * server-streaming and bidi: 1.00-1.01×), or 1-2% with this reader, and
 * costs a turn of latency.
 *
 * grpc-js pushes each response's bytes, and a pull decodes what it takes
 * (decodeResponse.ts). A response that does not decode cancels the call,
 * and the Stream fails with `INTERNAL` after the responses before it.
 *
 * If the consumer stops early (`Stream.take`), fails, or is interrupted, the
 * Stream's scope closes and the call is cancelled on the wire. For bidi calls
 * the request writer runs in the same scope; if the request Stream fails, the
 * call is cancelled and the response Stream fails with that error.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Cause, Channel, Effect, Exit, Scope, Stream } from "effect"
import type * as Arr from "effect/Array"
import * as GrpcError from "../../GrpcError.js"
import { CallReader, type ReadableProtocol } from "../callReader.js"
import { cancelOnWire } from "./cancel.js"
import { undecodableResponse } from "./decodeResponse.js"

const highWaterMark = 16

/** grpc-js's client call as this Stream reads it: the Readable protocol, events and `cancel`. */
export interface ReadableCall extends NodeJS.EventEmitter, ReadableProtocol {
  cancel(): void
}

export const responseStream = <Call extends ReadableCall, A, E = never, R = never>(
  start: Effect.Effect<Call, GrpcError.GrpcError>,
  decode: (bytes: Buffer) => A,
  writer?: (call: Call) => Effect.Effect<void, E, R>
): Stream.Stream<A, GrpcError.GrpcError | E, R> =>
  Stream.fromChannel(Channel.fromTransform((_, scope) =>
    Effect.flatMap(start, (call) => {
      let status: grpc.StatusObject | undefined
      let failure: Cause.Cause<E> | undefined
      // The waiting consumer's resume, and whether a wake-up is queued.
      let waiting: ((effect: typeof pull) => void) | undefined
      let queued = false
      const wake = () => {
        queued = false
        const resume = waiting
        waiting = undefined
        resume?.(pull)
      }
      const notify = () => {
        if (waiting !== undefined && !queued) {
          queued = true
          queueMicrotask(wake)
        }
      }
      // grpc-js pushes each response's bytes; a pull decodes them (decodeResponse.ts).
      const reader = new CallReader(call, () => {
        reader.fill(highWaterMark)
        notify()
      }, decode)
      // Reading starts at once, as a Readable with a 'data' listener would.
      reader.fill(highWaterMark)
      call.on("status", (s: grpc.StatusObject) => {
        status = s
        notify()
      })
      // 'status' carries the error too; this only keeps Node from treating
      // grpc-js's 'error' event as unhandled.
      call.on("error", () => {})

      const pull: Effect.Effect<Arr.NonEmptyReadonlyArray<A>, GrpcError.GrpcError | E | Cause.Done> = Effect.suspend(() => {
        if (failure !== undefined) return Effect.failCause(failure)
        const chunk = reader.take()
        if (chunk !== undefined) {
          reader.fill(highWaterMark)
          return Effect.succeed(chunk)
        }
        if (reader.undecodable !== undefined) {
          // As grpc-js's own client does with a response it cannot parse.
          cancelOnWire(call)
          return Effect.fail(undecodableResponse(reader.undecodable.cause))
        }
        if (status !== undefined && reader.ended) {
          return status.code === 0 ? Cause.done() : Effect.fail(GrpcError.fromStatus(status))
        }
        return waitForMessages
      })
      const stopWaiting = Effect.sync(() => {
        waiting = undefined
      })
      const waitForMessages = Effect.callback<Arr.NonEmptyReadonlyArray<A>, GrpcError.GrpcError | E | Cause.Done>((resume) => {
        waiting = resume
        return stopWaiting
      })

      const cancelUnlessDone = Effect.sync(() => {
        if (status === undefined) cancelOnWire(call)
      })
      const startWriter = writer === undefined ? Effect.void : Effect.forkIn(
        writer(call).pipe(Effect.onExit((exit) =>
          Exit.isFailure(exit) && !Exit.hasInterrupts(exit)
            ? Effect.sync(() => {
              failure = exit.cause
              cancelOnWire(call)
              notify()
            })
            : Effect.void
        )),
        scope,
        { startImmediately: true }
      )
      return Scope.addFinalizer(scope, cancelUnlessDone).pipe(Effect.andThen(startWriter), Effect.as(pull))
    })
  ))
