/**
 * What a server can know of a client's deadline, asserted from causality
 * alone, so that a loaded machine cannot fail it.
 *
 * grpc-js sends the time left (`grpc-timeout`, whole milliseconds rounded
 * up) when the call leaves the client, and the server adds it to its own
 * clock when the headers arrive (server-interceptors.ts). The deadline a
 * server sees is the client's, moved later by the time in transit (summed
 * over every hop), never earlier; and that transit ends before the handler
 * observed the call. A fixed tolerance around the client's deadline (the old
 * `|seen - deadline| <= 50`) fails whenever one hop takes longer than that,
 * which a busy 2-core machine does.
 */
import { assert } from "@effect/vitest"

/**
 * `seen` is the deadline a server saw for a call whose absolute `deadline`
 * was set by a client that started it at or after `sentAfter`; `seenAt` is
 * when the server's handler observed it (all epoch ms).
 */
export const assertDeadlineCarried = (
  seen: number,
  deadline: number,
  times: { readonly sentAfter: number; readonly seenAt: number },
  what = "deadline"
) => {
  assert.isAtLeast(seen, deadline, `${what}: never earlier than the client's`)
  assert.isAtMost(seen, deadline + (times.seenAt - times.sentAfter), `${what}: later only by the time in transit`)
}

/**
 * `seen` is the deadline a server saw for a call made with a relative
 * `timeout` (ms) by a client that started it at or after `sentAfter`: the
 * client's deadline is `start + timeout` for a start in
 * [sentAfter, seenAt], and transit only moves it later.
 */
export const assertTimeoutCarried = (
  seen: number,
  timeout: number,
  times: { readonly sentAfter: number; readonly seenAt: number },
  what = "deadline"
) =>
  // The earliest deadline the client can have set is sentAfter + timeout;
  // transit up to seenAt moves it later by at most seenAt - sentAfter.
  assertDeadlineCarried(seen, times.sentAfter + timeout, times, what)
