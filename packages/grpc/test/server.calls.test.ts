import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect, Stream } from "effect"
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
