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
 */
export const writeAll = <A>(call: WritableCall<A>, chunk: ReadonlyArray<A>): Effect.Effect<void> => {
  let i = 0
  const loop: Effect.Effect<void> = Effect.suspend(() => {
    while (i < chunk.length) {
      if (!call.write(chunk[i++]!)) return i < chunk.length ? Effect.andThen(waitForDrain(call), loop) : waitForDrain(call)
    }
    return Effect.void
  })
  return loop
}

const waitForDrain = (call: NodeJS.EventEmitter): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const pending: Pending = { immediate: undefined }
    const onDrain = resumeOnDrain(resume, pending)
    call.once("drain", onDrain)
    return Effect.sync(() => {
      call.off("drain", onDrain)
      if (pending.immediate !== undefined) clearImmediate(pending.immediate)
    })
  })

/**
 * A writer resumes after `'drain'` from a macrotask (setImmediate) when the
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

interface Pending {
  immediate: NodeJS.Immediate | undefined
}

// Built by functions rather than assigned from literals: tsx (esbuild's
// keepNames) wraps every named function literal in a `__name` call, which
// would run on each wait.
const resumeOnDrain = (resume: (effect: Effect.Effect<void>) => void, pending: Pending) => () => {
  if (performance.now() - lastTurn < TURN_MILLIS) return resume(Effect.void)
  pending.immediate = setImmediate(resumeAfterTurn, resume)
}

const resumeAfterTurn = (resume: (effect: Effect.Effect<void>) => void) => {
  lastTurn = performance.now()
  resume(Effect.void)
}

/** Writes a whole Stream to a call, chunk by chunk, with the backpressure of `writeAll`. */
export const writeStream = <A, E, R>(call: WritableCall<A>, stream: Stream.Stream<A, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEachArray(stream, (chunk) => writeAll(call, chunk))
