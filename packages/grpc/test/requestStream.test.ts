import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import { GrpcError } from "../src/index.js"
import { connect, echoFrame, echoStream } from "./h2.js"
import { clientStreamingCall, rawClient, rawServer, startEcho } from "./helpers.js"

/**
 * The server's request Stream takes over grpc-js's Readable protocol for the
 * calls it owns (internal/callReader.ts): it replaces `push` on the call and
 * asks for messages with `_read()`. These tests pin what it relies on in
 * grpc-js, and what it does at the edges of a call.
 */
describe("grpc-js's server call, read through push and _read", () => {
  it.effect("pushes nothing unasked, at most one message per _read(), in order, then push(null)", () =>
    Effect.gen(function*() {
      const N = 500
      const seen = yield* Deferred.make<{ overAsked: number; messages: Array<string> }>()
      const { port } = yield* rawServer({
        clientStreamingEcho: (call, callback) => {
          let reads = 0
          let pushes = 0
          let overAsked = 0
          const messages: Array<string> = []
          // Each ask waits a turn of the event loop, so that grpc-js has every
          // chance to push what it was not asked for.
          const readOne = () => {
            reads++
            call._read(1)
          }
          call.push = (message: EchoRequest | null) => {
            pushes++
            if (pushes > reads) overAsked++
            if (message === null) {
              callback(null, { message: String(messages.length) })
              Deferred.doneUnsafe(seen, Exit.succeed({ overAsked, messages }))
            } else {
              messages.push(message.message)
              setImmediate(readOne)
            }
            return true
          }
          setImmediate(readOne)
        }
      })
      const client = yield* rawClient(`127.0.0.1:${port}`)
      const result = yield* clientStreamingCall(client, (call) => {
        for (let i = 1; i <= N; i++) call.write({ message: String(i) })
        call.end()
      })
      const observed = yield* Deferred.await(seen)
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.response, { message: String(N) })
      assert.strictEqual(observed.overAsked, 0)
      assert.deepStrictEqual(observed.messages, Array.from({ length: N }, (_, i) => String(i + 1)))
    }))
})

describe("GrpcServer: the request Stream at the edges of a call", () => {
  it.effect("a message that cannot be decoded fails the handler's request Stream with INTERNAL, after the messages before it; the client gets INTERNAL", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const waiting = yield* Deferred.make<void>()
      const failed = yield* Deferred.make<GrpcError.GrpcError>()
      const { server, client } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          requests.pipe(
            Stream.runForEach((r) =>
              Effect.sync(() => {
                received.push(r.message)
                if (received.length === 2) Deferred.doneUnsafe(waiting, Exit.void)
              })
            ),
            Effect.as({ message: String(received.length) }),
            Effect.tapError((error) => Deferred.succeed(failed, error))
          )
      })
      // A client whose serializer writes a field with wire type 7, which no
      // protobuf decoder accepts, for the message "bad".
      const Client = grpc.makeGenericClientConstructor({
        ClientStreamingEcho: {
          path: "/grpc.examples.echo.Echo/ClientStreamingEcho",
          requestStream: true,
          responseStream: false,
          requestSerialize: (m: EchoRequest) => m.message === "bad" ? Buffer.from([0x0f]) : Buffer.from(EchoRequest.encode(m).finish()),
          requestDeserialize: (b: Buffer) => EchoRequest.decode(b),
          responseSerialize: (m: EchoRequest) => Buffer.from(EchoRequest.encode(m).finish()),
          responseDeserialize: (b: Buffer) => EchoRequest.decode(b)
        }
      }, "Echo")
      const bad = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => bad.close()))
      const status = yield* Effect.callback<grpc.StatusObject>((resume) => {
        const call: grpc.ClientWritableStream<EchoRequest> = bad.ClientStreamingEcho(() => {})
        call.on("status", (s) => resume(Effect.succeed(s)))
        call.write({ message: "1" })
        call.write({ message: "2" })
        // Only once the handler has both and waits for a third.
        Effect.runFork(Effect.andThen(Deferred.await(waiting), Effect.sync(() => call.write({ message: "bad" }))))
      })
      assert.strictEqual(status.code, grpc.status.INTERNAL)
      assert.strictEqual(status.details, "Error deserializing request")
      // The server decodes requests itself (internal/server/decodeRequest.ts):
      // the handler sees why its requests ended, as it does with middleware.
      const error = yield* Deferred.await(failed)
      assert.strictEqual(error.code, GrpcError.Status.INTERNAL)
      assert.strictEqual(error.message, "Error deserializing request")
      assert.deepStrictEqual(received, ["1", "2"])
      // The server serves the next call.
      const next = yield* clientStreamingCall(client, (call) => {
        call.write({ message: "after" })
        call.end()
      })
      assert.strictEqual(next.code, grpc.status.OK)
      assert.deepStrictEqual(received, ["1", "2", "after"])
    }))

  it.effect("a pull still waiting when the call ends (here its deadline) fails with CANCELLED, even outside the handler's fiber", () =>
    Effect.gen(function*() {
      const escaped = yield* Deferred.make<Fiber.Fiber<unknown, GrpcError.GrpcError>>()
      const firstRead = yield* Deferred.make<void>()
      const { server } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          Effect.gen(function*() {
            // Outside structured concurrency on purpose: nothing interrupts
            // this fiber when the call ends.
            const fiber = Effect.runFork(
              Stream.runForEach(requests, () => Deferred.succeed(firstRead, undefined))
            )
            yield* Deferred.succeed(escaped, fiber)
            return yield* Effect.never
          })
      })
      // A raw HTTP/2 client: one message, never a half-close, and a deadline
      // the server enforces. (A cancel would not do: grpc-js delivers a
      // half-close first even for RST_STREAM without END_STREAM, so the
      // reader would see the requests end; only the handler's interruption
      // tells it from a real end, see server.cancellation.test.ts.)
      const session = yield* connect(server.port)
      const stream = echoStream(session, "ClientStreamingEcho", { "grpc-timeout": "300m" })
      stream.write(echoFrame("one"))
      const fiber = yield* Deferred.await(escaped)
      yield* Deferred.await(firstRead)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
      assert.strictEqual(Option.getOrUndefined(error)?.code, GrpcError.Status.CANCELLED)
    }))

  it.effect("a handler that answers after three of 1000 messages ends the call OK", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        clientStreamingEcho: (requests) =>
          Effect.map(Stream.runCollect(Stream.take(requests, 3)), (rs) => ({ message: rs.map((r) => r.message).join(",") }))
      })
      const result = yield* clientStreamingCall(client, (call) => {
        for (let i = 1; i <= 1000; i++) call.write({ message: String(i) })
        call.end()
      })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.response, { message: "1,2,3" })
    }))

  it.effect("a handler that never reads its requests ends the call OK", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({ clientStreamingEcho: () => Effect.succeed({ message: "unread" }) })
      const result = yield* clientStreamingCall(client, (call) => {
        for (let i = 1; i <= 1000; i++) call.write({ message: String(i) })
        call.end()
      })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(result.response, { message: "unread" })
    }))
})
