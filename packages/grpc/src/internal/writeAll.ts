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
    const onDrain = resumeOnDrain(resume)
    call.once("drain", onDrain)
    return Effect.sync(() => call.off("drain", onDrain))
  })

// Built by a function rather than assigned from a literal: tsx (esbuild's
// keepNames) wraps every named function literal in a `__name` call, which
// would run on each wait.
const resumeOnDrain = (resume: (effect: Effect.Effect<void>) => void) => () => resume(Effect.void)

/** Writes a whole Stream to a call, chunk by chunk, with the backpressure of `writeAll`. */
export const writeStream = <A, E, R>(call: WritableCall<A>, stream: Stream.Stream<A, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEachArray(stream, (chunk) => writeAll(call, chunk))
