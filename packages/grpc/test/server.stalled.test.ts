import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import type { EchoRequest, EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Exit, Stream } from "effect"
import { connect, echoFrame, echoStream, stallingProxy } from "./h2.js"
import { rawServer, startEcho, unaryCall } from "./helpers.js"

const message: EchoResponse = { message: "x".repeat(64) }

/**
 * A peer that opens a flow-control window of `window` bytes, starts a server
 * stream, stops reading its socket once data flows, and later drops the
 * connection. Returns the proxy (to `cut` it) once the stream is stalled.
 */
const stalledStream = (port: number, window: number) =>
  Effect.gen(function*() {
    const proxy = yield* stallingProxy(port)
    const session = yield* connect(proxy.port, { settings: { initialWindowSize: Math.min(window, 2 ** 31 - 1) } })
    session.setLocalWindowSize(window)
    const flowing = yield* Deferred.make<void>()
    const stream = echoStream(session, "ServerStreamingEcho")
    stream.once("data", () => Deferred.doneUnsafe(flowing, Exit.void))
    stream.end(echoFrame("stream"))
    yield* Deferred.await(flowing)
    proxy.stall()
    return proxy
  })

describe("GrpcServer: a peer with a 2 GiB window that stops reading, then leaves", () => {
  it.live("the server keeps serving while the stream is held, and notices at once when the peer leaves", () =>
    Effect.gen(function*() {
      let written = 0
      const ended = yield* Deferred.make<void>()
      const { server, client } = yield* startEcho({
        unaryEcho: Effect.succeed,
        serverStreamingEcho: () =>
          Stream.forever(Stream.make(message)).pipe(
            Stream.tap(() => Effect.sync(() => written++)),
            Stream.onExit(() => Deferred.succeed(ended, undefined))
          )
      })
      const proxy = yield* stalledStream(server.port, 2 ** 31 - 1)
      // Held: other clients are served.
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* unaryCall(client, { message: "probe" })).code, grpc.status.OK)
      const beforeDrop = written
      proxy.cut()
      yield* Deferred.await(ended)
      // Before the fix, the handler went on writing until the 2 GiB window
      // was used up (about 30 million messages, tens of seconds of CPU)
      // without the event loop processing any I/O.
      assert.isBelow(written - beforeDrop, 50_000)
      assert.strictEqual((yield* unaryCall(client, { message: "after" })).code, grpc.status.OK)
      assert.strictEqual(yield* server.activeCalls, 0)
    }))

  it.live("pinned: a plain grpc-js handler that writes on 'drain' spins until the peer's window is used up", () =>
    Effect.gen(function*() {
      let written = 0
      const cancelled = yield* Deferred.make<void>()
      const { port } = yield* rawServer({
        serverStreamingEcho: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
          let stopped = false
          call.on("cancelled", () => {
            stopped = true
            Deferred.doneUnsafe(cancelled, Exit.void)
          })
          const pump = () => {
            while (!stopped) {
              written++
              if (!call.write(message)) return void call.once("drain", pump)
            }
          }
          pump()
        }
      })
      // 16 MiB instead of 2 GiB, so that the spin ends within a few seconds.
      const proxy = yield* stalledStream(port, 16 * 1024 * 1024)
      const beforeDrop = written
      proxy.cut()
      yield* Deferred.await(cancelled)
      // What the kernel buffers held when the peer stalled is a few MiB; the
      // rest of the window (10 MiB or more, 70 bytes a message) is written to
      // a dead connection before grpc-js sees it close.
      assert.isAbove(written - beforeDrop, 50_000)
    }))
})
