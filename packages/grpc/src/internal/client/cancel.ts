/**
 * Cancelling a client call on the wire.
 *
 * grpc-js 1.14.7 loses a cancel that arrives in the same tick as the call's
 * start (synchronously or in a microtask) on a connected channel: the server
 * still receives the call's HEADERS, but never END_STREAM nor RST_STREAM, so
 * its handler runs until the connection closes, and the open stream keeps the
 * client's socket alive after `close()`. Reproduced with plain grpc-js on
 * both sides; no upstream issue found. An interrupted fiber can easily hit
 * that window (e.g. `Fiber.interrupt` right after forking a client-streaming
 * call), so the cancel is sent from the next macrotask. This costs one event
 * loop turn on the cancel path only; `client.test.ts` pins it.
 *
 * @internal
 */
interface Cancelable {
  cancel(): void
}

/** Cancels waiting for their macrotask; a closing channel sends them at once. */
const pending = new Set<Cancelable>()

export const cancelOnWire = (call: Cancelable): void => {
  pending.add(call)
  setImmediate(() => {
    if (pending.delete(call)) call.cancel()
  })
}

/** Sends every pending cancel now: called when a channel closes, so none is lost. */
export const flushPendingCancels = (): void => {
  for (const call of pending) call.cancel()
  pending.clear()
}
