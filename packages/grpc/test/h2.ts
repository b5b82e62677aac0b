/**
 * A raw HTTP/2 peer (Node's http2 client, no gRPC library) for tests that
 * send what a gRPC library never would: malformed headers, PING floods.
 */
import { Effect } from "effect"
import * as http2 from "node:http2"
import * as net from "node:net"
import { relay } from "./helpers.js"

/** A gRPC length-prefixed frame around an Echo request whose message is `message`. */
export const echoFrame = (message: string): Buffer => {
  const text = Buffer.from(message)
  const body = Buffer.concat([Buffer.from([0x0a, text.length]), text])
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(body.length, 1)
  return Buffer.concat([prefix, body])
}

/** A connected raw HTTP/2 session that has the server's SETTINGS, closed with the Scope. */
export const connect = (port: number, options?: http2.ClientSessionOptions) =>
  Effect.acquireRelease(
    Effect.callback<http2.ClientHttp2Session>((resume) => {
      const session = http2.connect(`http://127.0.0.1:${port}`, options)
      session.on("error", () => {})
      session.once("remoteSettings", () => resume(Effect.succeed(session)))
    }),
    (session) => Effect.sync(() => session.destroy())
  )

/** What a raw call saw: the grpc-status (headers or trailers), or the stream's reset code. */
export interface RawOutcome {
  readonly status: number | undefined
  readonly message: string | undefined
  readonly rstCode: number | undefined
}

/** Opens an Echo call's stream with gRPC's request headers (and `headers`); stream errors are ignored. */
export const echoStream = (
  session: http2.ClientHttp2Session,
  method: string,
  headers: http2.OutgoingHttpHeaders = {}
): http2.ClientHttp2Stream => {
  const stream = session.request({
    ":method": "POST",
    ":path": `/grpc.examples.echo.Echo/${method}`,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers
  })
  stream.on("error", () => {})
  return stream
}

/**
 * Starts an Echo call with extra request headers; `halfClose: false` sends
 * the request but leaves the stream open (a client stream that never ends).
 * Completes at the first grpc-status, or when the stream closes.
 */
export const rawCall = (
  session: http2.ClientHttp2Session,
  method: string,
  headers: http2.OutgoingHttpHeaders,
  options: { readonly message?: string; readonly halfClose?: boolean } = {}
) =>
  Effect.callback<RawOutcome>((resume) => {
    const stream = echoStream(session, method, headers)
    let done = false
    const finish = (h: http2.IncomingHttpHeaders | undefined) => {
      if (done) return
      done = true
      const status = h?.["grpc-status"]
      const message = h?.["grpc-message"]
      resume(Effect.succeed({
        status: status === undefined ? undefined : Number(status),
        message: typeof message === "string" ? decodeURIComponent(message) : undefined,
        rstCode: status === undefined ? stream.rstCode : undefined
      }))
      if (!stream.closed) stream.close()
    }
    stream.on("response", (h) => {
      if (h["grpc-status"] !== undefined) finish(h)
    })
    stream.on("trailers", (h) => finish(h))
    stream.on("data", () => {})
    stream.on("close", () => finish(undefined))
    const frame = echoFrame(options.message ?? "hello")
    if (options.halfClose === false) stream.write(frame)
    else stream.end(frame)
    return Effect.sync(() => stream.close())
  })

/**
 * A TCP relay that can stop reading what the server sends (`stall`), as a
 * client that stopped reading its socket would, and drop every connection
 * (`cut`). Closed with the Scope.
 */
export const stallingProxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly port: number; readonly stall: () => void; readonly cut: () => void }>((resume) => {
      const upstreams = new Set<net.Socket>()
      const sockets = new Set<net.Socket>()
      const proxy = net.createServer((inbound) => upstreams.add(relay(inbound, targetPort, sockets)))
      const cut = () => sockets.forEach((s) => s.destroy())
      proxy.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          port: (proxy.address() as net.AddressInfo).port,
          stall: () =>
            upstreams.forEach((s) => {
              s.unpipe()
              s.pause()
            }),
          cut: () => {
            cut()
            proxy.close()
          }
        })))
    }),
    (proxy) => Effect.sync(() => proxy.cut())
  )
