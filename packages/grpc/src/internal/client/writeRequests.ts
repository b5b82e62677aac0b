/**
 * Writes a request Stream to a client-streaming or bidi call, with
 * backpressure, then half-closes it.
 *
 * @internal
 */
import { Effect, type Stream } from "effect"
import { type WritableCall, writeStream } from "../writeAll.js"

export const writeRequests = <A, E, R>(
  call: WritableCall<A> & { end(): unknown },
  requests: Stream.Stream<A, E, R>
): Effect.Effect<void, E, R> =>
  writeStream(call, requests).pipe(Effect.andThen(Effect.sync(() => call.end())))
