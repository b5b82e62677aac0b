import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Stream } from "effect"
import { connect, echoFrame, echoStream } from "./h2.js"
import { collect, clientStreamingCall, startEcho, unaryCall } from "./helpers.js"

describe("GrpcServer: the four call kinds succeed over HTTP/2", () => {
  it.effect("unary", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({ unaryEcho: (req) => Effect.succeed({ message: `echo ${req.message}` }) })
      const result = yield* unaryCall(client, { message: "hi" })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.response, { message: "echo hi" })
    }))

  it.effect("server streaming", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        serverStreamingEcho: (req) => Stream.range(1, 5).pipe(Stream.map((i) => ({ message: `${req.message}-${i}` })))
      })
      const result = yield* collect(client.serverStreamingEcho({ message: "s" }))
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.messages.map((m) => m.message), ["s-1", "s-2", "s-3", "s-4", "s-5"])
    }))

  it.effect("server streaming: 300 distinct messages, 0-3 KiB, past the flow-control window, arrive intact", () =>
    Effect.gen(function*() {
      // The server's encoder lends grpc-js the reused writer's bytes, which
      // grpc-js 1.14 copies into its frame at once (internal/codec.ts). If it
      // ever kept them instead, the messages HTTP/2 holds back here (about
      // 450 KiB against a 64 KiB window) would be overwritten by later ones.
      const expected = Array.from({ length: 300 }, (_, i) => `${i}:`.padEnd((i * 37) % 3072, String.fromCharCode(97 + (i % 26))))
      const { client } = yield* startEcho({
        serverStreamingEcho: () => Stream.fromIterable(expected.map((message) => ({ message })))
      })
      const result = yield* collect(client.serverStreamingEcho({ message: "go" }))
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.messages.map((m) => m.message), expected)
    }))

  it.effect("client streaming", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          requests.pipe(
            Stream.map((r) => r.message),
            Stream.runCollect,
            Effect.map((all) => ({ message: all.join(",") }))
          )
      })
      const result = yield* clientStreamingCall(client, (call) => {
        for (const m of ["a", "b", "c"]) call.write({ message: m })
        call.end()
      })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.response, { message: "a,b,c" })
    }))

  it.effect("client streaming: a second run of the request Stream continues after the first stopped early", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          Effect.gen(function*() {
            const first = yield* Stream.runCollect(Stream.take(requests, 1))
            const rest = yield* Stream.runCollect(requests)
            return { message: [...first, ...rest].map((r) => r.message).join(",") }
          })
      })
      const messages = Array.from({ length: 40 }, (_, i) => String(i))
      const result = yield* clientStreamingCall(client, (call) => {
        for (const m of messages) call.write({ message: m })
        call.end()
      })
      assert.strictEqual(result.code, grpc.status.OK)
      // Stream.take drops the rest of the chunk it took its message from (how
      // many arrived together depends on timing); the second run gets every
      // message after that chunk, and the end of the stream.
      const seen = result.response!.message.split(",")
      assert.strictEqual(seen[0], "0")
      const from = messages.indexOf(seen[1]!)
      assert.isAbove(from, 0)
      assert.deepStrictEqual(seen.slice(1), messages.slice(from))
    }))

  it.effect("client streaming: a second run of the request Stream starts right after the last chunk the first one took", () =>
    Effect.gen(function*() {
      const seen = yield* Deferred.make<Array<string>>()
      const { server } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          Effect.gen(function*() {
            // The first run takes exactly one chunk, and stops.
            let first: ReadonlyArray<{ message: string }> = []
            yield* Stream.runForEachArray(requests, (chunk) => {
              first = chunk
              return Effect.fail("stop" as const)
            }).pipe(Effect.catch(() => Effect.void))
            const rest = yield* Stream.runCollect(requests)
            yield* Deferred.succeed(seen, [...first, ...rest].map((r) => r.message))
            return { message: "done" }
          })
      })
      // 200 messages in one write, so that they arrive together and the
      // server has asked for more (16 ahead) by the time the first run stops.
      const messages = Array.from({ length: 200 }, (_, i) => String(i))
      const session = yield* connect(server.port)
      echoStream(session, "ClientStreamingEcho").end(Buffer.concat(messages.map(echoFrame)))
      assert.deepStrictEqual(yield* Deferred.await(seen), messages)
    }))

  it.effect("bidi", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        bidirectionalStreamingEcho: (requests) => requests.pipe(Stream.map((r) => ({ message: r.message.toUpperCase() })))
      })
      const call = client.bidirectionalStreamingEcho()
      for (const m of ["x", "y", "z"]) call.write({ message: m })
      call.end()
      const result = yield* collect(call)
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.messages.map((m) => m.message), ["X", "Y", "Z"])
    }))
})
