/**
 * The hostile inputs, one function per class. Each sends its inputs to a
 * server on 127.0.0.1 with Node's own HTTP/2 client (or raw TCP where HTTP/2
 * itself is the attack), counts what came back per outcome, and closes its
 * connections before returning: "the peer left".
 *
 * Outcomes are strings: `status N` (a grpc-status), `http N` (an HTTP status
 * without grpc-status), `reset N` (the stream was reset with code N),
 * `closed` (the connection went away), and `LOST` for an accepted call that
 * got nothing within the class's wait: the one outcome that must not happen.
 */
import * as http2 from "node:http2"
import * as net from "node:net"
import * as zlib from "node:zlib"

export type Outcomes = Record<string, number>

export interface Scale {
  /** Multiplies the number of inputs (1 for the full run). */
  readonly factor: number
  /**
   * Multiplies how long a call may wait for its outcome before it counts as
   * LOST (default 1): the CI version raises it, for a machine under load.
   */
  readonly patience?: number
}

/** `ms`, stretched by the scale's patience. */
const wait = (scale: Scale, ms: number) => ms * (scale.patience ?? 1)

const ECHO = "/grpc.examples.echo.Echo/"

/** A gRPC message frame: flag, 4-byte length (or `declared`), body. */
export const frame = (body: Buffer, options: { flag?: number; declared?: number } = {}): Buffer => {
  const prefix = Buffer.alloc(5)
  prefix.writeUInt8(options.flag ?? 0, 0)
  prefix.writeUInt32BE(options.declared ?? body.length, 1)
  return Buffer.concat([prefix, body])
}

/** An Echo request whose message is `text` (protobuf field 1, string). */
export const echoBody = (text: string): Buffer => {
  const bytes = Buffer.from(text)
  const length: Array<number> = []
  let n = bytes.length
  do {
    length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0))
    n >>>= 7
  } while (n > 0)
  return Buffer.concat([Buffer.from([0x0a, ...length]), bytes])
}

const add = (outcomes: Outcomes, key: string, n = 1) => {
  outcomes[key] = (outcomes[key] ?? 0) + n
}

export const connect = (port: number, options?: http2.ClientSessionOptions): Promise<http2.ClientHttp2Session> =>
  new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, options)
    session.on("error", () => {})
    session.once("remoteSettings", () => resolve(session))
    session.once("close", () => reject(new Error("connection closed before SETTINGS")))
  })

export interface CallOptions {
  readonly headers?: http2.OutgoingHttpHeaders
  readonly body?: Buffer
  /** Leave the request stream open after the body. */
  readonly hold?: boolean
  /** How long to wait for an outcome before calling the call LOST. */
  readonly waitMs?: number
}

/** One call; resolves with its outcome. */
export const call = (session: http2.ClientHttp2Session, path: string, options: CallOptions = {}): Promise<string> =>
  new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream
    try {
      stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...options.headers
      })
    } catch {
      return resolve("closed")
    }
    let done = false
    let http: number | undefined
    const finish = (outcome: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(outcome)
      if (!stream.closed) stream.close()
    }
    const timer = setTimeout(() => finish("LOST"), options.waitMs ?? 5000)
    stream.on("response", (h) => {
      http = Number(h[":status"])
      if (h["grpc-status"] !== undefined) finish(`status ${h["grpc-status"]}`)
    })
    stream.on("trailers", (h) => finish(h["grpc-status"] === undefined ? `http ${http}` : `status ${h["grpc-status"]}`))
    stream.on("data", () => {})
    stream.on("error", () => {})
    stream.on("close", () => {
      if (http !== undefined && http !== 200) finish(`http ${http}`)
      else if (stream.rstCode !== undefined && stream.rstCode !== 0) finish(`reset ${stream.rstCode}`)
      else if (session.destroyed || session.closed) finish("closed")
      else finish(`reset ${stream.rstCode ?? 0}`)
    })
    if (options.hold === true) stream.write(options.body ?? frame(echoBody("hold")))
    else stream.end(options.body ?? frame(echoBody("hello")))
  })

const tally = async (calls: ReadonlyArray<Promise<string>>, outcomes: Outcomes = {}): Promise<Outcomes> => {
  for (const outcome of await Promise.all(calls)) add(outcomes, outcome)
  return outcomes
}

/** Makes `calls` on one connection, then tallies what each of them got. */
const overOneConnection = async (
  port: number,
  calls: (session: http2.ClientHttp2Session) => ReadonlyArray<Promise<string>>
): Promise<{ readonly inputs: number; readonly outcomes: Outcomes }> => {
  const session = await connect(port)
  const made = calls(session)
  const outcomes = await tally(made)
  session.destroy()
  return { inputs: made.length, outcomes }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `make` for every index with at most `concurrency` in flight. */
const pool = async <A>(count: number, concurrency: number, make: (i: number) => Promise<A>): Promise<Array<A>> => {
  const results: Array<A> = new Array(count)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, async () => {
    while (next < count) {
      const i = next++
      results[i] = await make(i)
    }
  }))
  return results
}

export interface Attack {
  readonly name: string
  /** Whether the outside suite saw this class fail (issue 13). */
  readonly failedBefore: boolean
  readonly what: string
  /**
   * Work done before the server is measured and probed (building large
   * inputs): the suite's client shares one process with its probes, and a
   * blocked event loop there would fail probes the server would answer.
   */
  readonly prepare?: (scale: Scale) => void | Promise<void>
  /** How many times the suite runs `run` on the same server (memory per round). Default 1. */
  readonly repeat?: number
  readonly run: (port: number, scale: Scale) => Promise<{ readonly inputs: number; readonly outcomes: Outcomes }>
}

/** A TCP relay that can stop reading what the server sends (`stall`) and drop everything (`cut`). */
export const stallingProxy = (target: number): Promise<{ port: number; stall: () => void; cut: () => void }> =>
  new Promise((resolve) => {
    const upstreams = new Set<net.Socket>()
    const sockets = new Set<net.Socket>()
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(target, "127.0.0.1")
      upstreams.add(outbound)
      sockets.add(inbound).add(outbound)
      inbound.pipe(outbound)
      outbound.pipe(inbound)
      inbound.on("error", () => outbound.destroy())
      outbound.on("error", () => inbound.destroy())
    })
    proxy.listen(0, "127.0.0.1", () =>
      resolve({
        port: (proxy.address() as net.AddressInfo).port,
        stall: () => upstreams.forEach((s) => (s.unpipe(), s.pause())),
        cut: () => {
          sockets.forEach((s) => s.destroy())
          proxy.close()
        }
      }))
  })

const WINDOW = 2 ** 31 - 1

// ------------------------------------------------------------ the classes

const stuckReader: Attack = {
  name: "2 GiB window, stops reading, then drops",
  failedBefore: true,
  what: "4 server streams of 10^9 messages on connections with a 2 GiB flow-control window; the client stops reading its socket for 3 s, then drops the connections",
  run: async (port) => {
    const proxy = await stallingProxy(port)
    const sessions = await Promise.all([0, 1, 2, 3].map(() => connect(proxy.port, { settings: { initialWindowSize: WINDOW } })))
    const outcomes: Outcomes = {}
    let flowing = 0
    await new Promise<void>((resolve) => {
      for (const session of sessions) {
        session.setLocalWindowSize(WINDOW)
        const stream = session.request({ ":method": "POST", ":path": `${ECHO}ServerStreamingEcho`, "content-type": "application/grpc", te: "trailers" })
        stream.on("error", () => {})
        stream.once("data", () => ++flowing === sessions.length && resolve())
        stream.end(frame(echoBody("1000000000")))
      }
    })
    await sleep(200)
    proxy.stall()
    await sleep(3000)
    add(outcomes, "held 3 s, then dropped", sessions.length)
    proxy.cut()
    sessions.forEach((s) => s.destroy())
    return { inputs: sessions.length, outcomes }
  }
}

/**
 * Opens and at once resets (HEADERS, then RST_STREAM CANCEL) up to `count`
 * UnaryEcho streams on a new connection; returns the resets sent and what
 * became of the connection (`goaway <code>` when the server sent one).
 */
export const resetFlood = async (port: number, count: number): Promise<{ sent: number; connection: string }> => {
  const session = await connect(port)
  let goaway: string | undefined
  session.once("goaway", (code) => (goaway = `goaway ${code}`))
  let sent = 0
  for (let i = 0; i < count && !session.destroyed && !session.closed && goaway === undefined; i++) {
    try {
      const stream = session.request({ ":method": "POST", ":path": `${ECHO}UnaryEcho`, "content-type": "application/grpc", te: "trailers" })
      stream.on("error", () => {})
      stream.close(http2.constants.NGHTTP2_CANCEL)
      sent++
    } catch {
      break
    }
    if (i % 100 === 99) await sleep(0)
  }
  await sleep(200)
  const connection = goaway ?? (session.destroyed || session.closed ? "closed by server" : "kept")
  session.destroy()
  return { sent, connection }
}

const rstFlood: Attack = {
  name: "rapid RST_STREAM (CVE-2023-44487)",
  failedBefore: true,
  what: "three floods, one after the other on the same server: each opens and resets 20,000 streams (HEADERS then RST_STREAM CANCEL) on 20 connections of 1,000, then one connection tries 3,000 on its own",
  repeat: 3,
  run: async (port, scale) => {
    const connections = 20
    const perConnection = Math.round(1000 * scale.factor)
    const outcomes: Outcomes = {}
    await Promise.all(Array.from({ length: connections }, async () => {
      const { sent, connection } = await resetFlood(port, perConnection)
      add(outcomes, "reset sent", sent)
      add(outcomes, `connections of ${perConnection}: ${connection}`)
    }))
    // Past Node's own limit (nghttp2: a burst of 1,000 resets per connection, then 33 a second).
    const single = await resetFlood(port, Math.round(3000 * scale.factor))
    add(outcomes, "reset sent", single.sent)
    add(outcomes, `one connection of ${Math.round(3000 * scale.factor)}: ${single.connection === "goaway 2" ? "goaway 2 (INTERNAL_ERROR)" : single.connection}`)
    add(outcomes, "resets it sent before that", single.sent)
    return { inputs: connections * perConnection + Math.round(3000 * scale.factor), outcomes }
  }
}

const TIMEOUTS_MALFORMED = ["-1S", "-5m", "1.5S", "1e3m", "S", "1", "1X", "123456789S", "2147483647m", "2147483648m", "4294967296m", "1 S", "1S junk", "junk 1S", "1h", "1s", "9".repeat(100) + "S", "1S,2S", "NaNS", "InfinityS"]
const TIMEOUTS_VALID = ["1S", "0S", "0n", "1n", "1u", "1m", "20m", "00000001S", "99999999n"]
const TIMEOUTS_HUGE = ["99999999H", "99999999M", "99999999S", "99999999m", "99999999u"]

const grpcTimeout: Attack = {
  name: "malformed, negative, over-long, huge grpc-timeout",
  failedBefore: true,
  what: "34 grpc-timeout values (20 malformed, 9 valid, 5 valid but days long) on all 4 methods; malformed and valid ones also on requests left open. Huge valid deadlines go on requests that end (a request left open with a deadline of days has no status to get until it is cancelled)",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const methods = ["UnaryEcho", "ServerStreamingEcho", "ClientStreamingEcho", "BidirectionalStreamingEcho"]
      const calls: Array<Promise<string>> = []
      const rounds = Math.max(1, Math.round(3 * scale.factor))
      for (let r = 0; r < rounds; r++) {
        for (const method of methods) {
          const body = frame(echoBody(method === "ServerStreamingEcho" ? "3" : "t"))
          for (const value of [...TIMEOUTS_MALFORMED, ...TIMEOUTS_VALID]) {
            calls.push(call(session, ECHO + method, { headers: { "grpc-timeout": value }, body, waitMs: wait(scale, 4000) }))
            calls.push(call(session, ECHO + method, { headers: { "grpc-timeout": value }, body, hold: true, waitMs: wait(scale, 4000) }))
          }
          for (const value of TIMEOUTS_HUGE) calls.push(call(session, ECHO + method, { headers: { "grpc-timeout": value }, body, waitMs: wait(scale, 4000) }))
        }
      }
      return calls
    })
}

const randomBodies: Attack = {
  name: "random protobuf bodies",
  failedBefore: false,
  what: "500 unary and 100 bidi calls whose message is 1-256 random bytes",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const n = Math.round(500 * scale.factor)
      const calls = [
        ...Array.from({ length: n }, () => call(session, `${ECHO}UnaryEcho`, { body: frame(randomBytes()) })),
        ...Array.from({ length: n / 5 }, () => call(session, `${ECHO}BidirectionalStreamingEcho`, { body: frame(randomBytes()) }))
      ]
      return calls
    })
}

const randomBytes = () => {
  const b = Buffer.alloc(1 + Math.floor(Math.random() * 256))
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256)
  return b
}

const lyingPrefixes: Attack = {
  name: "lying length prefixes",
  failedBefore: false,
  what: "messages whose 5-byte prefix claims more (10 B, 4 MiB, 4 GiB - 1) or less than the bytes sent, and truncated prefixes, then half-close",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const body = echoBody("liar")
      const inputs = [
        frame(body, { declared: body.length + 10 }),
        frame(body, { declared: 4 * 1024 * 1024 }),
        frame(body, { declared: 2 ** 32 - 1 }),
        frame(body, { declared: 1 }),
        Buffer.from([0, 0, 0]),
        Buffer.concat([frame(body), Buffer.from([0, 0, 0, 0, 99])])
      ]
      const rounds = Math.round(50 * scale.factor)
      const calls = Array.from({ length: rounds }, () => inputs.map((b) => call(session, `${ECHO}UnaryEcho`, { body: b, waitMs: wait(scale, 5000) }))).flat()
      return calls
    })
}

let gzipBomb: Buffer | undefined

const badCompression: Attack = {
  name: "bad compressed flags, gzip bombs",
  failedBefore: false,
  what: "compressed flag 1 without grpc-encoding, flags 2 and 255, gzip flag on bytes that are not gzip, and a 255 KiB gzip that inflates to 256 MiB",
  // Compressing 256 MiB blocks the suite's process for most of a second.
  prepare: () => {
    gzipBomb ??= zlib.gzipSync(Buffer.alloc(256 * 1024 * 1024))
  },
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const body = echoBody("z")
      const bomb = gzipBomb ??= zlib.gzipSync(Buffer.alloc(256 * 1024 * 1024))
      const rounds = Math.round(40 * scale.factor)
      const calls: Array<Promise<string>> = []
      for (let i = 0; i < rounds; i++) {
        const waitMs = wait(scale, 5000)
        calls.push(call(session, `${ECHO}UnaryEcho`, { body: frame(body, { flag: 1 }), waitMs }))
        calls.push(call(session, `${ECHO}UnaryEcho`, { body: frame(body, { flag: 2 }), waitMs }))
        calls.push(call(session, `${ECHO}UnaryEcho`, { body: frame(body, { flag: 255 }), waitMs }))
        calls.push(call(session, `${ECHO}UnaryEcho`, { headers: { "grpc-encoding": "gzip" }, body: frame(body, { flag: 1 }), waitMs }))
        calls.push(call(session, `${ECHO}UnaryEcho`, { headers: { "grpc-encoding": "snappy" }, body: frame(body, { flag: 1 }), waitMs }))
        if (i % 4 === 0) calls.push(call(session, `${ECHO}UnaryEcho`, { headers: { "grpc-encoding": "gzip" }, body: frame(bomb, { flag: 1 }), waitMs: wait(scale, 15000) }))
      }
      return calls
    })
}

const oversized: Attack = {
  name: "oversized messages",
  failedBefore: false,
  what: "requests of 5 MiB and 16 MiB (the limit is 4 MiB), unary and client streaming",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const big = frame(echoBody("x".repeat(5 * 1024 * 1024)))
      const huge = frame(echoBody("x".repeat(16 * 1024 * 1024)))
      const n = Math.round(20 * scale.factor)
      const calls = Array.from({ length: n }, (_, i) =>
        call(session, `${ECHO}${i % 2 === 0 ? "UnaryEcho" : "ClientStreamingEcho"}`, { body: i % 4 === 3 ? huge : big, waitMs: wait(scale, 15000) }))
      return calls
    })
}

const metadataAbuse: Attack = {
  name: "metadata abuse",
  failedBefore: false,
  what: "one 20 KiB value, 60 KiB in 600 headers, a 100 KiB value, binary headers with bad base64, 1,000 headers of 1 byte",
  run: async (port, scale) => {
    const outcomes: Outcomes = {}
    const variants: Array<http2.OutgoingHttpHeaders> = [
      { "x-big": "a".repeat(20 * 1024) },
      Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`x-h${i}`, "b".repeat(100)])),
      { "x-huge": "c".repeat(100 * 1024) },
      { "x-bad-bin": "%%%not base64%%%" },
      Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-${i}`, "d"]))
    ]
    const rounds = Math.round(20 * scale.factor)
    let inputs = 0
    for (let r = 0; r < rounds; r++) {
      for (const headers of variants) {
        // A fresh connection each time: some of these end the connection.
        const session = await connect(port).catch(() => undefined)
        if (session === undefined) {
          add(outcomes, "connect failed")
          continue
        }
        inputs++
        add(outcomes, await call(session, `${ECHO}UnaryEcho`, { headers }))
        session.destroy()
      }
    }
    return { inputs, outcomes }
  }
}

const contentTypes: Attack = {
  name: "wrong content types",
  failedBefore: false,
  what: "text/plain, application/json, none, application/grpc-web-text, application/grpcx",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const types = ["text/plain", "application/json", "", "application/grpc-web-text", "application/grpcx"]
      const n = Math.round(40 * scale.factor)
      const calls = Array.from({ length: n }, () => types.map((t) => call(session, `${ECHO}UnaryEcho`, { headers: { "content-type": t } }))).flat()
      return calls
    })
}

const unknownPaths: Attack = {
  name: "unknown paths",
  failedBefore: false,
  what: "unknown methods, services and paths, including / and a 4 KiB path",
  run: (port, scale) =>
    overOneConnection(port, (session) => {
      const paths = [`${ECHO}Nope`, "/nope.Nope/Nope", "/", "/grpc.examples.echo.Echo", `/${"p".repeat(4096)}`, "/grpc.examples.echo.Echo/UnaryEcho/extra"]
      const n = Math.round(40 * scale.factor)
      const calls = Array.from({ length: n }, () => paths.map((p) => call(session, p))).flat()
      return calls
    })
}

const rawGarbage: Attack = {
  name: "raw HTTP/2 garbage",
  failedBefore: false,
  what: "TCP connections sending random bytes, a valid preface then random frames, a frame longer than allowed, and HTTP/1.1",
  run: async (port, scale) => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
    const inputs = [
      () => randomBytes(),
      () => Buffer.concat([preface, settings, randomBytes(), randomBytes()]),
      () => Buffer.concat([preface, settings, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]), Buffer.alloc(1000)]),
      () => Buffer.concat([preface, settings, Buffer.from([0, 0, 4, 8, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 0, 0])]),
      () => Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    ]
    const outcomes: Outcomes = {}
    const n = Math.round(40 * scale.factor)
    await pool(n * inputs.length, 20, (i) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, "127.0.0.1")
        const timer = setTimeout(() => {
          add(outcomes, "still open after 2 s")
          socket.destroy()
          resolve()
        }, 2000)
        socket.on("data", () => {})
        socket.on("error", () => {})
        socket.on("close", () => {
          clearTimeout(timer)
          add(outcomes, "closed by server")
          resolve()
        })
        socket.write(inputs[i % inputs.length]!())
      }))
    return { inputs: n * inputs.length, outcomes }
  }
}

const streamFlood: Attack = {
  name: "stream floods past the concurrency limit",
  failedBefore: false,
  what: "one connection opens 3,000 client streams that stay open (the limit is 1,000 per connection), then half-closes them all",
  run: async (port, scale) => {
    const session = await connect(port, { peerMaxConcurrentStreams: 100_000 })
    const n = Math.round(3000 * scale.factor)
    const streams: Array<http2.ClientHttp2Stream> = []
    const calls: Array<Promise<string>> = []
    for (let i = 0; i < n; i++) {
      calls.push(new Promise((resolve) => {
        let stream: http2.ClientHttp2Stream
        try {
          stream = session.request({ ":method": "POST", ":path": `${ECHO}ClientStreamingEcho`, "content-type": "application/grpc", te: "trailers" })
        } catch {
          return resolve("closed")
        }
        streams.push(stream)
        let status: string | undefined
        const timer = setTimeout(() => resolve(status ?? "LOST"), 10_000)
        stream.on("response", (h) => (status = h["grpc-status"] === undefined ? status : `status ${h["grpc-status"]}`))
        stream.on("trailers", (h) => (status = `status ${h["grpc-status"]}`))
        stream.on("data", () => {})
        stream.on("error", () => {})
        stream.on("close", () => {
          clearTimeout(timer)
          resolve(status ?? `reset ${stream.rstCode}`)
        })
        stream.write(frame(echoBody("flood")))
      }))
    }
    await sleep(500)
    for (const s of streams) if (!s.closed) s.end()
    const outcomes = await tally(calls)
    session.destroy()
    return { inputs: n, outcomes }
  }
}

const slowloris: Attack = {
  name: "slowloris",
  failedBefore: false,
  what: "200 connections that send headers and then one byte of the request every 500 ms for 4 s; 100 TCP connections that send half a preface and wait",
  run: async (port, scale) => {
    const n = Math.round(200 * scale.factor)
    const sessions = await Promise.all(Array.from({ length: n }, () => connect(port)))
    const outcomes: Outcomes = {}
    const body = frame(echoBody("slow"))
    const streams = sessions.map((s) => {
      const stream = s.request({ ":method": "POST", ":path": `${ECHO}UnaryEcho`, "content-type": "application/grpc", te: "trailers" })
      stream.on("error", () => {})
      stream.on("data", () => {})
      return stream
    })
    const half = Array.from({ length: Math.round(100 * scale.factor) }, () => {
      const socket = net.connect(port, "127.0.0.1")
      socket.on("error", () => {})
      socket.write("PRI * HTTP/2.0\r\n")
      return socket
    })
    for (let i = 0; i < 8; i++) {
      for (const stream of streams) if (!stream.closed) stream.write(body.subarray(i, i + 1))
      await sleep(500)
    }
    const finished = streams.map((stream) =>
      new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve("LOST"), 5000)
        stream.on("trailers", (h) => (clearTimeout(timer), resolve(`status ${h["grpc-status"]}`)))
        stream.on("close", () => (clearTimeout(timer), resolve(`reset ${stream.rstCode}`)))
        stream.end(body.subarray(8))
      }))
    await tally(finished, outcomes)
    add(outcomes, "half-preface sockets closed by server", half.filter((s) => s.destroyed || s.readableEnded).length)
    half.forEach((s) => s.destroy())
    sessions.forEach((s) => s.destroy())
    return { inputs: n + half.length, outcomes }
  }
}

const handlerDefects: Attack = {
  name: "handler defects",
  failedBefore: false,
  what: "500 calls whose handler throws (the server must answer INTERNAL without the error's message or stack)",
  run: async (port, scale) => {
    const session = await connect(port)
    const n = Math.round(500 * scale.factor)
    const outcomes: Outcomes = {}
    await pool(n, 50, () =>
      new Promise<void>((resolve) => {
        const stream = session.request({ ":method": "POST", ":path": `${ECHO}UnaryEcho`, "content-type": "application/grpc", te: "trailers" })
        let outcome = "LOST"
        const timer = setTimeout(() => (add(outcomes, outcome), resolve()), wait(scale, 5000))
        const seen = (h: http2.IncomingHttpHeaders) => {
          const message = decodeURIComponent(String(h["grpc-message"] ?? ""))
          outcome = `status ${h["grpc-status"]}${/defect|Error|at /.test(message) ? " LEAKED" : ""}`
        }
        stream.on("response", (h) => h["grpc-status"] !== undefined && seen(h))
        stream.on("trailers", seen)
        stream.on("data", () => {})
        stream.on("error", () => {})
        stream.on("close", () => (clearTimeout(timer), add(outcomes, outcome), resolve()))
        stream.end(frame(echoBody("defect")))
      }))
    session.destroy()
    return { inputs: n, outcomes }
  }
}

const churn: Attack = {
  name: "connection churn mid-call",
  failedBefore: false,
  what: "2,000 connections, each starting a server stream or a held client stream and dropping its socket mid-call",
  run: async (port, scale) => {
    const n = Math.round(2000 * scale.factor)
    const outcomes: Outcomes = {}
    await pool(n, 50, async (i) => {
      const session = await connect(port).catch(() => undefined)
      if (session === undefined) return add(outcomes, "connect failed")
      const stream = session.request({
        ":method": "POST",
        ":path": `${ECHO}${i % 2 === 0 ? "ServerStreamingEcho" : "ClientStreamingEcho"}`,
        "content-type": "application/grpc",
        te: "trailers"
      })
      stream.on("error", () => {})
      stream.on("data", () => {})
      if (i % 2 === 0) stream.end(frame(echoBody("100000")))
      else stream.write(frame(echoBody("held")))
      await sleep(i % 5)
      session.socket.destroy()
      add(outcomes, "dropped mid-call")
    })
    return { inputs: n, outcomes }
  }
}

const pingFlood: Attack = {
  name: "PING and SETTINGS floods",
  failedBefore: false,
  what: "10 connections each sending 5,000 PINGs, then 10 connections each sending 2,000 SETTINGS frames",
  run: async (port, scale) => {
    const outcomes: Outcomes = {}
    const n = Math.round(5000 * scale.factor)
    await Promise.all(Array.from({ length: 10 }, async () => {
      const session = await connect(port)
      const away = new Promise<string>((resolve) => {
        session.once("goaway", (code, _last, data) => resolve(`goaway ${code} ${data?.toString() ?? ""}`.trim()))
        session.once("close", () => resolve("closed"))
        setTimeout(() => resolve("kept"), wait(scale, 3000))
      })
      for (let i = 0; i < n && !session.destroyed; i++) {
        try {
          session.ping(() => {})
        } catch {
          break
        }
      }
      add(outcomes, `pings: ${await away}`)
      session.destroy()
    }))
    await Promise.all(Array.from({ length: 10 }, async () => {
      const session = await connect(port)
      for (let i = 0; i < 2000 * scale.factor && !session.destroyed; i++) {
        try {
          session.settings({ initialWindowSize: 65535 + (i % 2) })
        } catch {
          break
        }
      }
      await sleep(500)
      add(outcomes, `settings: ${session.destroyed || session.closed ? "closed" : "kept"}`)
      session.destroy()
    }))
    return { inputs: 10 * n + 20_000 * scale.factor, outcomes }
  }
}

/** Every class run against the Echo server (the shutdown and interop classes are separate). */
export const attacks: ReadonlyArray<Attack> = [
  stuckReader,
  rstFlood,
  grpcTimeout,
  randomBodies,
  lyingPrefixes,
  badCompression,
  oversized,
  metadataAbuse,
  contentTypes,
  unknownPaths,
  rawGarbage,
  streamFlood,
  slowloris,
  handlerDefects,
  churn,
  pingFlood
]
