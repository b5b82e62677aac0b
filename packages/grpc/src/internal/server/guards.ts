/**
 * Protections a grpc-js server does not give, installed on its HTTP/2
 * servers once they are bound:
 *
 * - `grpc-timeout` is checked against the gRPC HTTP/2 spec (1 to 8 digits
 *   and a unit) before grpc-js parses it. grpc-js 1.14 matches it with an
 *   unanchored regular expression and truncates the result to 32 bits, so
 *   `-1S` becomes one second, `1.5S` five seconds, `123456789S` 23,456,789
 *   seconds, and `99999999M` wraps to a negative timer that expires at once.
 *   A malformed value is replaced by one grpc-js rejects (the call ends with
 *   `INTERNAL` "Invalid grpc-timeout value"); a valid one longer than the
 *   longest Node timer (about 24.8 days) is removed, i.e. no deadline.
 * - Ping abuse, as gRPC core and grpc-go enforce it (grpc-js enforces
 *   nothing): a PING that arrives sooner than `minPingInterval` after the
 *   previous one is a strike, unless the server has sent data since then;
 *   more than `maxPingStrikes` strikes get a GOAWAY with `ENHANCE_YOUR_CALM`
 *   and "too_many_pings", and the connection is closed.
 * - Metadata size: `SETTINGS_MAX_HEADER_LIST_SIZE`, which Node enforces on
 *   every request (a larger header block resets the stream).
 * - Rapid reset (CVE-2023-44487): Node's HTTP/2 layer (nghttp2) limits the
 *   RST_STREAM frames a peer sends on one connection with a token bucket
 *   (Node's default: a burst of 1000, then 33 a second) and answers a peer
 *   past it with GOAWAY `INTERNAL_ERROR`. Node takes the bucket as
 *   `streamResetBurst` and `streamResetRate` options of its HTTP/2 server
 *   (nodejs/node#54875), which grpc-js does not pass through: `limitResets`
 *   sets them on the options grpc-js creates its HTTP/2 servers with.
 *
 * grpc-js keeps its HTTP/2 servers, and the options it creates them with, in
 * private fields; if a future version renames them, `install` and
 * `limitResets` return false and `make` fails loudly rather than serve
 * without these protections (every server test goes through both).
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"

export interface Guards {
  readonly maxMetadataSize: number
  readonly minPingIntervalMs: number
  readonly maxPingStrikes: number
}

/** Rapid-reset limit per connection: a token bucket of RST_STREAM frames. */
export interface ResetLimit {
  readonly burst: number
  readonly perSecond: number
}

/**
 * grpc-js boundary: `Server#commonServerOptions` is private; grpc-js passes
 * it to `http2.createServer` when it binds, so this must run before binding.
 */
export const limitResets = (server: grpc.Server, limit: ResetLimit): boolean => {
  const options = (server as unknown as { readonly commonServerOptions?: unknown }).commonServerOptions
  if (typeof options !== "object" || options === null) return false
  // Node applies them only when both are set.
  Object.assign(options as http2.ServerOptions, {
    streamResetBurst: resetBucketValue(limit.burst),
    streamResetRate: resetBucketValue(limit.perSecond)
  })
  return true
}

// nghttp2's bucket as Node passes it (a Uint32Array slot each).
const MAX_RESET_BUCKET = 2 ** 32 - 1

/**
 * Node writes both values into a Uint32Array without checking them, so
 * Infinity, NaN, a negative or 2^32 would silently become a bucket of (about)
 * 0: every client that cancels a few calls would get GOAWAY. Infinity is
 * the largest bucket nghttp2 takes (4 billion: no limit in practice).
 */
const resetBucketValue = (value: number): number => value === Infinity ? MAX_RESET_BUCKET : value

const isBucketValue = (value: number, min: number): boolean =>
  value === Infinity || (Number.isInteger(value) && value >= min && value <= MAX_RESET_BUCKET)

/**
 * Whether Node can take `limit` as it is: whole numbers up to 2^32 - 1 (a
 * burst of at least 1; a rate of 0 never refills), or Infinity.
 */
export const isValidResetLimit = (limit: ResetLimit): boolean =>
  isBucketValue(limit.burst, 1) && isBucketValue(limit.perSecond, 0)

// Longest delay a Node timer can hold; grpc-js arms one with the timeout.
const MAX_TIMER_MS = 2 ** 31 - 1

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 }

const TIMEOUT = /^(\d{1,8})([HMSmun])$/

/**
 * A replacement grpc-js rejects with `INTERNAL` (its own regular expression
 * needs a digit), and which tells the client what was expected.
 */
export const MALFORMED_TIMEOUT = "malformed; expected up to eight digits and one unit of H M S m u n"

/**
 * What grpc-js should see for a `grpc-timeout` header: the value itself when
 * valid, `undefined` (remove it) when valid but beyond any Node timer, and
 * `MALFORMED_TIMEOUT` otherwise.
 */
export const normalizeTimeout = (value: string | ReadonlyArray<string>): string | undefined => {
  const match = typeof value === "string" ? TIMEOUT.exec(value) : null
  if (match === null) return MALFORMED_TIMEOUT
  return Number(match[1]) * UNIT_MS[match[2]!]! > MAX_TIMER_MS ? undefined : value as string
}

const checkTimeout = (_stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
  const value = headers["grpc-timeout"]
  if (value === undefined) return
  const normalized = normalizeTimeout(value)
  if (normalized === undefined) delete headers["grpc-timeout"]
  else if (normalized !== value) headers["grpc-timeout"] = normalized
}

const TOO_MANY_PINGS = Buffer.from("too_many_pings")

// More than a PING acknowledgement (17 bytes) and a SETTINGS one written
// since the previous PING: the server sent data or headers in between.
const SENT_DATA_BYTES = 64

const enforcePings = (guards: Guards) => (session: http2.ServerHttp2Session): void => {
  let last = 0
  let written = 0
  let strikes = 0
  session.on("ping", () => {
    const now = Date.now()
    const bytes = session.socket?.bytesWritten ?? 0
    if (bytes - written > SENT_DATA_BYTES) strikes = 0
    else if (now - last < guards.minPingIntervalMs) strikes++
    last = now
    written = bytes
    if (strikes > guards.maxPingStrikes && !session.destroyed) {
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, TOO_MANY_PINGS)
      session.destroy()
    }
  })
}

/**
 * grpc-js boundary: `Server#http2Servers` is private (a Map whose keys are
 * the bound Node servers); read here, once, after binding.
 */
const http2ServersOf = (server: grpc.Server): ReadonlyArray<http2.Http2Server> | undefined => {
  const map = (server as unknown as { readonly http2Servers?: unknown }).http2Servers
  return map instanceof Map ? [...map.keys()] as Array<http2.Http2Server> : undefined
}

/** Installs the guards on every HTTP/2 server `server` has bound; false if they cannot be found. */
export const install = (server: grpc.Server, guards: Guards): boolean => {
  const servers = http2ServersOf(server)
  if (servers === undefined || servers.length === 0) return false
  for (const h2 of servers) {
    // Applies to every session from now on; nothing is connected yet.
    h2.updateSettings({ maxHeaderListSize: guards.maxMetadataSize })
    // Before grpc-js's own listener, which reads the header.
    h2.prependListener("stream", checkTimeout)
    if (Number.isFinite(guards.maxPingStrikes)) h2.on("session", enforcePings(guards))
  }
  return true
}
