/**
 * Writes a request Stream to a client-streaming or bidi call, with
 * backpressure, then half-closes it.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import { type WritableCall, writeAll } from "../writeAll.js"

export const writeRequests = <A, E, R>(
  call: WritableCall<A> & { end(): unknown },
  requests: Stream.Stream<A, E, R>
): Effect.Effect<void, E, R> =>
  Stream.runForEachArray(requests, (chunk) => writeAll(call, chunk)).pipe(
    Effect.andThen(Effect.sync(() => call.end()))
  )
