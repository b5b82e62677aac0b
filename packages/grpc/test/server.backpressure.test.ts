import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Stream } from "effect"
import { clientStreamingCall, collect, rawClient, startEcho } from "./helpers.js"

const N = Number(process.env.BP_N ?? 100_000)

describe("GrpcServer: backpressure in both directions", () => {
  it.effect(`a server stream of ${N} messages to a slow reader waits for 'drain'; the server buffer stays bounded`, () =>
    Effect.gen(function*() {
      let maxBuffered = 0
      let heldBack = 0
      const blocked = yield* Deferred.make<void>()
      const { client } = yield* startEcho({
        serverStreamingEcho: (_req, ctx) => {
          // The grpc-js call is a Node Writable: its buffer is what must stay
          // bounded. The test watches each write the adapter makes.
          const call = ctx.call as grpc.ServerWritableStream<unknown, unknown>
          const write = call.write.bind(call)
          call.write = (chunk: unknown) => {
            const ok = write(chunk)
            maxBuffered = Math.max(maxBuffered, call.writableLength)
            if (!ok) {
              heldBack++
              Deferred.doneUnsafe(blocked, Effect.void)
            }
            return ok
          }
          return Stream.range(1, N).pipe(Stream.map((i) => ({ message: String(i) })))
        }
      })
      const call = client.serverStreamingEcho({ message: "go" })
      // The reader takes one message, then stops reading until the server
      // reports that it is held back.
      const result = yield* Effect.callback<{ count: number; inOrder: boolean; code: grpc.status }>((resume) => {
        let count = 0
        let inOrder = true
        call.on("data", (m: { message: string }) => {
          count++
          if (m.message !== String(count)) inOrder = false
          if (count === 1) {
            call.pause()
            Effect.runFork(Effect.andThen(Deferred.await(blocked), Effect.sync(() => call.resume())))
          }
        })
        call.on("error", () => {})
        call.on("status", (s) => resume(Effect.succeed({ count, inOrder, code: s.code })))
      })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.strictEqual(result.count, N)
      assert.isTrue(result.inOrder)
      assert.isAbove(heldBack, 0, "the handler was held back by the slow reader")
      // Node's object-mode highWaterMark is 16: one more is buffered when write() first returns false.
      assert.isAtMost(maxBuffered, 17)
    }), 60_000)

  it.effect(`a client stream of ${N} messages to a slow handler pauses the call; the server buffer stays bounded`, () =>
    Effect.gen(function*() {
      let maxHeld = 0
      let clientWaits = 0
      const { server } = yield* startEcho({
        clientStreamingEcho: (requests, ctx) => {
          // The adapter asks grpc-js for each message with `_read()`, and
          // grpc-js answers each ask with one message (requestStream.test.ts):
          // asks minus messages consumed is what the server holds.
          const call = ctx.call as grpc.ServerReadableStream<unknown, unknown>
          let asked = 0
          let consumed = 0
          const read = call._read.bind(call)
          call._read = (size: number) => {
            asked++
            maxHeld = Math.max(maxHeld, asked - consumed)
            read(size)
          }
          return requests.pipe(
            // slow: each message costs trips through the scheduler, which let
            // grpc-js and HTTP/2 run in between
            Stream.mapEffect((r) =>
              Effect.map(Effect.andThen(Effect.yieldNow, Effect.yieldNow), () => {
                consumed++
                return r
              })
            ),
            Stream.runFold((): number => 0, (n) => n + 1),
            Effect.map((n) => ({ message: String(n) }))
          )
        }
      })
      // grpc-js's client acknowledges writes at once while they fit in its
      // per-call retry buffer (1 MiB by default), whatever HTTP/2 flow control
      // says, and then copies that buffer on every message it sends: with
      // 100k small messages that is quadratic (RetryingCall.clearSentMessages).
      // A 64 KiB retry buffer makes the client wait for the server sooner.
      const client = yield* rawClient(`127.0.0.1:${server.port}`, { "grpc.per_rpc_retry_buffer_size": 64 * 1024 })
      const seen = yield* clientStreamingCall(client, (call) => {
        let i = 0
        const writeMore = () => {
          while (i < N) {
            i++
            if (!call.write({ message: String(i) })) {
              clientWaits++
              call.once("drain", writeMore)
              return
            }
          }
          call.end()
        }
        writeMore()
      })
      assert.strictEqual(seen.code, grpc.status.OK)
      assert.deepStrictEqual(seen.response, { message: String(N) })
      assert.isAbove(clientWaits, 0, "the client was held back")
      // At most a pull's chunk (64) being consumed and 16 asked for ahead.
      assert.isAtMost(maxHeld, 64 + 16)
    }), 60_000)
})

describe("GrpcServer: writing a chunk of responses from grpc-js's 'drain' events", () => {
  // Past grpc-js's buffer (16 messages) the rest of a chunk is written from
  // the 'drain' listener, outside the handler fiber (internal/writeAll.ts).
  it.effect("a write that throws there ends the call with INTERNAL, not an uncaught exception", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        serverStreamingEcho: () =>
          // Node's Writable throws ERR_STREAM_NULL_VALUES for null: a stand-in
          // for anything that throws from grpc-js's write (an interceptor).
          Stream.fromIterable(Array.from({ length: 40 }, (_, i) => (i === 30 ? null : { message: String(i) }) as never))
      })
      const result = yield* collect(client.serverStreamingEcho({ message: "go" }))
      assert.strictEqual(result.code, grpc.status.INTERNAL)
      assert.strictEqual(result.messages.length, 30)
    }))

  it.effect("a call cancelled in the middle of a chunk stops writing and leaves no 'drain' listener", () =>
    Effect.gen(function*() {
      const firstArrived = yield* Deferred.make<void>()
      const after = yield* Deferred.make<{ drainListeners: number; written: number }>()
      const { client } = yield* startEcho({
        serverStreamingEcho: (_req, ctx) => {
          const call = ctx.call as grpc.ServerWritableStream<unknown, unknown>
          let written = 0
          const write = call.write.bind(call)
          call.write = (chunk: unknown) => {
            written++
            return write(chunk)
          }
          // One chunk of 100,000: far more than grpc-js and HTTP/2 hold.
          return Stream.fromIterable(Array.from({ length: 100_000 }, (_, i) => ({ message: String(i) }))).pipe(
            Stream.ensuring(Effect.suspend(() => {
              const drainListeners = call.listenerCount("drain")
              // `written` is read after a yield: anything written after the
              // interrupt would show up in it.
              return Effect.andThen(Effect.yieldNow, Effect.suspend(() => Deferred.succeed(after, { drainListeners, written })))
            }))
          )
        }
      })
      const call = client.serverStreamingEcho({ message: "go" })
      call.on("error", () => {})
      call.once("data", () => Deferred.doneUnsafe(firstArrived, Effect.void))
      yield* Deferred.await(firstArrived)
      call.cancel()
      const seen = yield* Deferred.await(after)
      assert.strictEqual(seen.drainListeners, 0)
      assert.isBelow(seen.written, 100_000, "the rest of the chunk was not written")
    }))
})
