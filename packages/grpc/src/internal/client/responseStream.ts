/**
 * The response Stream of a server-streaming or bidi client call.
 *
 * grpc-js's client call is an object-mode Readable fed the Readable way: each
 * `_read()` asks the call for one message (`startRead`), grpc-js answers with
 * `push(message)`, and `push(null)` comes before the status. As on the server
 * (internal/server/requestStream.ts), the adapter owns the call and takes
 * that protocol over: `push` on the call object appends to this Stream's
 * buffer, and the Stream asks with `_read()` while it holds fewer than 16
 * messages, so that grpc-js stops reading from HTTP/2 and flow control holds
 * the server back when the consumer falls behind. Node's Readable machinery
 * (`'data'`, and a `process.nextTick` and `read(0)` per message in flowing
 * mode) is off the per-message path. The Stream ends once grpc-js has
 * delivered every message (`push(null)`) and the status (`'status'`); a
 * non-OK status fails it with a `GrpcError` after the messages that preceded
 * it.
 *
 * A waiting consumer is woken from a microtask, at most once however many
 * messages are pushed before it runs. In grpc-js 1.14 that is usually one
 * message: its client passes each received message through a promise (the
 * filter stack's `receiveMessage`, in resolving-call.js) and reads the next
 * one only after that, so a consumer that keeps up is resumed once per
 * message; one that falls behind takes what has queued as one chunk.
 * Waking it from a later macrotask (`setImmediate`) instead gathered 2-3
 * messages per pull at benchmark rates but saved no CPU (same-process A/B,
 * server-streaming and bidi: 1.00-1.01×), and costs a turn of latency.
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
import * as GrpcError from "../../GrpcError.js"
import { cancelOnWire } from "./cancel.js"

const highWaterMark = 16

/** grpc-js's client call as this Stream reads it: the Readable protocol, events and `cancel`. */
export interface ReadableCall extends NodeJS.EventEmitter {
  push(chunk: unknown): boolean
  _read(size: number): void
  cancel(): void
}

type Chunk<A> = readonly [A, ...Array<A>]

export const responseStream = <Call extends ReadableCall, A, E = never, R = never>(
  start: Effect.Effect<Call, GrpcError.GrpcError>,
  writer?: (call: Call) => Effect.Effect<void, E, R>
): Stream.Stream<A, GrpcError.GrpcError | E, R> =>
  Stream.fromChannel(Channel.fromTransform((_, scope) =>
    Effect.flatMap(start, (call) => {
      let buffer: Array<A> = []
      // A `_read()` grpc-js has not answered yet (it answers each with one `push`).
      let asked = false
      let ended = false
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
      const ask = () => {
        if (!asked && !ended && buffer.length < highWaterMark) {
          asked = true
          call._read(1)
        }
      }
      // `push` is Node's Readable method, which grpc-js calls on this object
      // for every message and at the end; replacing it on the instance is how
      // this Stream receives them.
      call.push = (message: A | null) => {
        asked = false
        if (message === null) ended = true
        else {
          buffer.push(message)
          ask()
        }
        notify()
        return true
      }
      // Reading starts at once, as a Readable with a 'data' listener would.
      ask()
      call.on("status", (s: grpc.StatusObject) => {
        status = s
        notify()
      })
      // 'status' carries the error too; this only keeps Node from treating
      // grpc-js's 'error' event as unhandled.
      call.on("error", () => {})

      const pull: Effect.Effect<Chunk<A>, GrpcError.GrpcError | E | Cause.Done> = Effect.suspend(() => {
        if (failure !== undefined) return Effect.failCause(failure)
        if (buffer.length > 0) {
          // Non-empty: checked just above; the array type cannot say so.
          const chunk = buffer as unknown as Chunk<A>
          buffer = []
          ask()
          return Effect.succeed(chunk)
        }
        if (status !== undefined && ended) {
          return status.code === 0 ? Cause.done() : Effect.fail(GrpcError.fromStatus(status))
        }
        return waitForMessages
      })
      const stopWaiting = Effect.sync(() => {
        waiting = undefined
      })
      const waitForMessages = Effect.callback<Chunk<A>, GrpcError.GrpcError | E | Cause.Done>((resume) => {
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
