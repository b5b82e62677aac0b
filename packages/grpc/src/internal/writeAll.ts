/**
 * Writing a Stream's chunks to a grpc-js call (either side) with backpressure.
 *
 * @internal
 */
import { Effect, Stream } from "effect"

/** The part of a grpc-js writable call this needs (server responses or client requests). */
export interface WritableCall<A> extends NodeJS.EventEmitter {
  write(message: A): boolean
}

/**
 * Writes a chunk of messages. Whenever grpc-js reports its buffer full
 * (`write` returns false), waits for `'drain'` before writing more, so a slow
 * reader holds the producer back instead of growing a buffer.
 *
 * The waits of one chunk are one fiber suspension: the rest of the chunk is
 * written from the `'drain'` listener (as a plain grpc-js writer would) and
 * the fiber resumes once the whole chunk is written (and drained, if the
 * last write found the buffer full). grpc-js's buffer holds 16 messages, so
 * resuming the fiber on each `'drain'` cost a suspension (an Effect
 * callback, and on Node the `AsyncResource` Effect creates for each) every
 * 16 messages. A write that throws in the listener (say, a grpc-js
 * interceptor failing) fails the fiber with that defect, as it would inside
 * the fiber.
 */
export const writeAll = <A>(call: WritableCall<A>, chunk: ReadonlyArray<A>): Effect.Effect<void> =>
  Effect.suspend(() => {
    let i = 0
    while (i < chunk.length) {
      if (!call.write(chunk[i++]!)) return writeRest(call, chunk, i)
    }
    return Effect.void
  })

/** Waits for `'drain'`, then writes `chunk` from `from` on, waiting again as needed; resumes when all is written and drained. */
const writeRest = <A>(call: WritableCall<A>, chunk: ReadonlyArray<A>, from: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const writer = new ChunkWriter(call, chunk, from, resume)
    call.once("drain", writer.onDrain)
    return Effect.sync(() => writer.stop())
  })

class ChunkWriter<A> {
  immediate: NodeJS.Immediate | undefined = undefined
  /** Set once the fiber was interrupted (or resumed): nothing more is written. */
  stopped = false
  readonly onDrain: () => void
  readonly afterTurn: () => void
  constructor(
    readonly call: WritableCall<A>,
    readonly chunk: ReadonlyArray<A>,
    public next: number,
    readonly resume: (effect: Effect.Effect<void>) => void
  ) {
    // Built by functions rather than assigned from literals: tsx (esbuild's
    // keepNames) wraps every named function literal in a `__name` call.
    this.onDrain = drained(this)
    this.afterTurn = turned(this)
  }

  /** Writes until grpc-js's buffer is full again (then waits for `'drain'`) or the chunk is done. */
  write(): void {
    const { call, chunk } = this
    try {
      while (this.next < chunk.length) {
        if (this.stopped) return
        if (!call.write(chunk[this.next++]!)) {
          call.once("drain", this.onDrain)
          return
        }
      }
    } catch (defect) {
      this.stop()
      return this.resume(Effect.die(defect))
    }
    this.stop()
    this.resume(Effect.void)
  }

  stop(): void {
    this.stopped = true
    this.call.off("drain", this.onDrain)
    if (this.immediate !== undefined) clearImmediate(this.immediate)
  }
}

/**
 * After `'drain'`: writes on at once, or from a macrotask (setImmediate)
 * when the event loop has not had a turn for `TURN_MILLIS` (see below).
 */
const drained = (writer: ChunkWriter<unknown>) => () => {
  if (writer.stopped) return
  if (performance.now() - lastTurn < TURN_MILLIS) return writer.write()
  writer.immediate = setImmediate(writer.afterTurn)
}

const turned = (writer: ChunkWriter<unknown>) => () => {
  writer.immediate = undefined
  lastTurn = performance.now()
  writer.write()
}

/**
 * A writer goes on after `'drain'` from a macrotask (setImmediate) when the
 * event loop has not had a turn for `TURN_MILLIS`, so that I/O, and above
 * all a socket's close, is seen between writes.
 *
 * Without it, a peer that opens a huge flow-control window (2 GiB), stops
 * reading and then drops its connection keeps the server busy for tens of
 * seconds: once the socket has failed, Node's HTTP/2 session completes every
 * write at once until that window is used up, each completion schedules the
 * next write on `process.nextTick`, and a chain of ticks starves the event
 * loop, so the socket's close (an I/O event) is not processed, no other call
 * is served, and the writer never learns that the call is gone. Plain
 * grpc-js handlers that write on `'drain'` behave the same (a test pins it).
 */
const TURN_MILLIS = 1
let lastTurn = 0

/** Writes a whole Stream to a call, chunk by chunk, with the backpressure of `writeAll`. */
export const writeStream = <A, E, R>(call: WritableCall<A>, stream: Stream.Stream<A, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEachArray(stream, (chunk) => writeAll(call, chunk))
