/**
 * Counting the messages of a call's streaming side, for middleware (server
 * and client): the counters live on the call (`ServerCallContext`,
 * `ClientCall`), bumped once per chunk.
 *
 * @internal
 */
import { Stream } from "effect"

export interface MessageCounters {
  messagesSent: number
  messagesReceived: number
}

/** `stream`, adding the size of each chunk to `counters[side]`. */
export const countMessages = <A, E, R>(
  stream: Stream.Stream<A, E, R>,
  counters: MessageCounters,
  side: keyof MessageCounters
): Stream.Stream<A, E, R> =>
  Stream.mapArray(stream, (chunk) => {
    counters[side] += chunk.length
    return chunk
  })
