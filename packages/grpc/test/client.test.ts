import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import type { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { EchoDefinition, EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import { GrpcClient, GrpcError, GrpcServer, GrpcTest } from "../src/index.js"
import { assertDeadlineCarried } from "./deadlines.js"
import { echoDefaults, grpcServer, rawServer } from "./helpers.js"

/** A client on its own channel, open for the rest of the test. */
const echoClient = (port: number) =>
  Effect.map(GrpcClient.makeChannel(`127.0.0.1:${port}`), (channel) => GrpcClient.makeWith(channel, EchoDefinition))

describe("GrpcClient: the four call kinds against a GrpcServer", () => {
  const Echo = GrpcTest.layer(EchoDefinition, {
    unaryEcho: (req) => Effect.succeed({ message: `unary ${req.message}` }),
    serverStreamingEcho: (req) => Stream.range(1, 3).pipe(Stream.map((i) => ({ message: `${req.message} ${i}` }))),
    clientStreamingEcho: (requests) =>
      Stream.runCollect(requests).pipe(Effect.map((all) => ({ message: all.map((r) => r.message).join("+") }))),
    bidirectionalStreamingEcho: (requests) => Stream.map(requests, (r) => ({ message: r.message.toUpperCase() }))
  })

  it.effect("each kind returns the right messages", () =>
    Effect.gen(function*() {
      const echo = yield* GrpcClient.make(EchoDefinition)
      assert.deepStrictEqual(yield* echo.unaryEcho({ message: "a" }), { message: "unary a" })
      assert.deepStrictEqual(
        yield* Stream.runCollect(echo.serverStreamingEcho({ message: "s" })),
        [{ message: "s 1" }, { message: "s 2" }, { message: "s 3" }]
      )
      assert.deepStrictEqual(
        yield* echo.clientStreamingEcho(Stream.make({ message: "x" }, { message: "y" })),
        { message: "x+y" }
      )
      assert.deepStrictEqual(
        yield* Stream.runCollect(echo.bidirectionalStreamingEcho(Stream.make({ message: "p" }, { message: "q" }))),
        [{ message: "P" }, { message: "Q" }]
      )
    }).pipe(Effect.provide(Echo)))

  it.effect("a client whose channel's Scope has closed fails each kind with UNAVAILABLE \"channel closed\"", () =>
    Effect.gen(function*() {
      const server = yield* GrpcServer.GrpcServer
      const echo = yield* Effect.scoped(echoClient(server.port))
      const expectClosed = (error: GrpcError.GrpcError) => {
        assert.strictEqual(error.code, GrpcError.Status.UNAVAILABLE)
        assert.strictEqual(error.message, "channel closed")
      }
      expectClosed(yield* Effect.flip(echo.unaryEcho({ message: "a" })))
      expectClosed(yield* Effect.flip(Stream.runCollect(echo.serverStreamingEcho({ message: "a" }))))
      expectClosed(yield* Effect.flip(echo.clientStreamingEcho(Stream.make({ message: "a" }))))
      expectClosed(yield* Effect.flip(Stream.runCollect(echo.bidirectionalStreamingEcho(Stream.make({ message: "a" })))))
    }).pipe(Effect.provide(Echo)))

  it.effect("a non-OK status is a typed GrpcError with code, message and trailers", () =>
    Effect.gen(function*() {
      const echo = yield* GrpcClient.make(EchoDefinition)
      const error = yield* echo.unaryEcho({ message: "" }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "GrpcError")
      assert.strictEqual(error.code, GrpcError.Status.INVALID_ARGUMENT)
      assert.strictEqual(error.message, "empty")
      assert.deepStrictEqual(error.metadata.get("x-why"), ["no message"])
      const streamed = yield* Stream.runCollect(echo.serverStreamingEcho({ message: "" })).pipe(Effect.flip)
      assert.strictEqual(streamed.code, GrpcError.Status.FAILED_PRECONDITION)
    }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: () => {
        const md = new grpc.Metadata()
        md.set("x-why", "no message")
        return Effect.fail(GrpcError.make(GrpcError.Status.INVALID_ARGUMENT, "empty", md))
      },
      serverStreamingEcho: () => Stream.fail(GrpcError.make(GrpcError.Status.FAILED_PRECONDITION, "nope"))
    }))))

  it.effect("per-call metadata, deadline, response headers and trailers", () =>
    Effect.gen(function*() {
      const echo = yield* GrpcClient.make(EchoDefinition)
      const metadata = new grpc.Metadata()
      metadata.set("x-user", "ada")
      let headers: grpc.Metadata | undefined
      let trailers: grpc.Metadata | undefined
      const sentAfter = Date.now()
      const deadline = new Date(sentAfter + 60_000)
      const reply = yield* echo.unaryEcho({ message: "" }, {
        metadata,
        deadline,
        onHeaders: (h) => (headers = h),
        onTrailers: (t) => (trailers = t)
      })
      const [user, seenDeadline, seenAt] = reply.message.split(" ")
      assert.strictEqual(user, "ada")
      assertDeadlineCarried(Number(seenDeadline), deadline.getTime(), { sentAfter, seenAt: Number(seenAt) })
      assert.deepStrictEqual(headers?.get("x-h"), ["1"])
      assert.deepStrictEqual(trailers?.get("x-t"), ["2"])
      const timedOut = yield* echo.unaryEcho({ message: "slow" }, { timeout: "150 millis" }).pipe(Effect.flip)
      assert.strictEqual(timedOut.code, GrpcError.Status.DEADLINE_EXCEEDED)
    }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: (req, ctx) =>
        req.message === "slow" ? Effect.never : Effect.gen(function*() {
          const h = new grpc.Metadata()
          h.set("x-h", "1")
          const t = new grpc.Metadata()
          t.set("x-t", "2")
          yield* ctx.sendHeaders(h)
          yield* ctx.setTrailers(t)
          const deadline = Option.map(ctx.deadline, (d) => d.getTime())
          return { message: `${ctx.metadata.get("x-user")[0]} ${Option.getOrElse(deadline, () => 0)} ${Date.now()}` }
        })
    }))))
})

/** A plain grpc-js server that reports each call's start and its 'cancelled' event. */
const observedServer = Effect.gen(function*() {
  const started = yield* Deferred.make<void>()
  const cancelled = yield* Deferred.make<void>()
  const watch = (call: NodeJS.EventEmitter) => {
    call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.void))
    Deferred.doneUnsafe(started, Exit.void)
  }
  const { port } = yield* rawServer({
    unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>) => watch(call),
    serverStreamingEcho: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      watch(call)
      // stream until the client goes away, respecting flow control
      let i = 0
      const pump = () => {
        while (!call.cancelled && call.write({ message: String(++i) }));
        if (!call.cancelled) call.once("drain", pump)
      }
      pump()
    },
    clientStreamingEcho: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>) => {
      watch(call)
      call.on("data", () => {})
    },
    bidirectionalStreamingEcho: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      watch(call)
      call.on("data", (m: EchoRequest) => call.write(m))
    }
  })
  const echo = yield* echoClient(port)
  return { echo, started, cancelled }
})

describe("GrpcClient: interruption cancels on the wire, as a plain grpc-js server observes", () => {
  it.effect("interrupting a unary call", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      const fiber = yield* Effect.forkChild(echo.unaryEcho({ message: "x" }), { startImmediately: true })
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(cancelled)
    }))

  it.effect("interrupting a server-streaming consumer", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      const fiber = yield* Effect.forkChild(Stream.runDrain(echo.serverStreamingEcho({ message: "x" })), {
        startImmediately: true
      })
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(cancelled)
    }))

  it.effect("interrupting a client-streaming call", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      const fiber = yield* Effect.forkChild(echo.clientStreamingEcho(Stream.never), { startImmediately: true })
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(cancelled)
    }))

  it.effect("interrupting a bidi call", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      const fiber = yield* Effect.forkChild(
        Stream.runDrain(echo.bidirectionalStreamingEcho(Stream.concat(Stream.make({ message: "a" }), Stream.never))),
        { startImmediately: true }
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(cancelled)
    }))

  it.effect("a consumer that stops early (Stream.take(3)) cancels the call", () =>
    Effect.gen(function*() {
      const { echo, cancelled } = yield* observedServer
      const first = yield* Stream.runCollect(Stream.take(echo.serverStreamingEcho({ message: "x" }), 3))
      assert.deepStrictEqual(first.map((m) => m.message), ["1", "2", "3"])
      yield* Deferred.await(cancelled)
    }))

  it.effect("a failing request Stream cancels the call and fails with its own error", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      // fails once the server has the call, so there is a call to cancel
      const requests = Stream.concat(
        Stream.make({ message: "a" }),
        Stream.fromEffect(Effect.andThen(Deferred.await(started), Effect.fail("request source broke" as const)))
      )
      const error = yield* echo.clientStreamingEcho(requests).pipe(Effect.flip)
      assert.strictEqual(error, "request source broke")
      yield* Deferred.await(cancelled)
    }))

  it.effect("a failing request Stream of a bidi call cancels it too", () =>
    Effect.gen(function*() {
      const { echo, started, cancelled } = yield* observedServer
      const requests = Stream.concat(
        Stream.make({ message: "a" }),
        Stream.fromEffect(Effect.andThen(Deferred.await(started), Effect.fail("broke" as const)))
      )
      const error = yield* Stream.runDrain(echo.bidirectionalStreamingEcho(requests)).pipe(Effect.flip)
      assert.strictEqual(error, "broke")
      yield* Deferred.await(cancelled)
    }))

  it.effect("interrupting a call in the same tick it started still cancels it on the wire", () =>
    Effect.gen(function*() {
      // grpc-js loses a cancel made in the tick a call starts on a connected
      // channel (see internal/client/cancel.ts): the server would keep this
      // call open until the connection closed, and this test would time out.
      const started = yield* Deferred.make<void>()
      const cancelled = yield* Deferred.make<void>()
      const { port } = yield* rawServer({
        unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) =>
          callback(null, call.request),
        clientStreamingEcho: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>) => {
          call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.void))
          Deferred.doneUnsafe(started, Exit.void)
        }
      })
      const echo = yield* echoClient(port)
      yield* echo.unaryEcho({ message: "connect first" })
      const fiber = yield* Effect.forkChild(echo.clientStreamingEcho(Stream.never), { startImmediately: true })
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(started)
      yield* Deferred.await(cancelled)
    }))
})

describe("GrpcClient: grpc-js's caller stack", () => {
  /**
   * Replaces the global `Error` while `body` runs, recording the stack limit
   * in force for each `new Error(...)` made through the global (as grpc-js's
   * `new Error()` is).
   */
  const recordingErrors = <A, E, R>(body: (limits: Array<number>) => Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const Original = globalThis.Error
        const limits: Array<number> = []
        globalThis.Error = class extends Original {
          // V8 reads the limit from the original Error, so the subclass
          // forwards it (as GrpcClient sets it through the global).
          static override get stackTraceLimit() {
            return Original.stackTraceLimit
          }
          static override set stackTraceLimit(limit: number) {
            Original.stackTraceLimit = limit
          }
          constructor(message?: string, options?: ErrorOptions) {
            limits.push(Original.stackTraceLimit)
            super(message, options)
          }
        } as ErrorConstructor
        return { Original, limits }
      }),
      ({ limits }) => body(limits),
      ({ Original }) => Effect.sync(() => (globalThis.Error = Original))
    )

  it.effect("plain grpc-js captures the caller's stack on every unary call, for an error it only builds on failure", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({ unaryEcho: (_call, callback) => callback({ code: grpc.status.NOT_FOUND, details: "no" }) })
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      const path = "/grpc.examples.echo.Echo/UnaryEcho"
      const identity = (b: Buffer) => b
      const started = yield* recordingErrors((limits) =>
        Effect.sync(() => {
          const startUnaryCallHere = () =>
            new Promise<grpc.ServiceError>((resolve) =>
              client.makeUnaryRequest(path, identity, identity, Buffer.alloc(0), (error) => resolve(error!))
            )
          const pending = startUnaryCallHere()
          return { limits: [...limits], pending }
        })
      )
      // One Error, with the usual stack limit, made as the call started.
      assert.deepStrictEqual(started.limits, [Error.stackTraceLimit])
      const error = yield* Effect.promise(() => started.pending)
      assert.strictEqual(error.code, grpc.status.NOT_FOUND)
      assert.include(error.stack, "for call at")
      assert.include(error.stack, "startUnaryCallHere")
    }))

  it.effect("GrpcClient starts unary and client-streaming calls without it, and leaves Error.stackTraceLimit as it was", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({
        unaryEcho: (call, callback) => callback(null, { message: call.request.message }),
        clientStreamingEcho: (call, callback) => {
          call.on("data", () => {})
          call.on("end", () => callback({ code: grpc.status.NOT_FOUND, details: "none here" }))
        }
      })
      const echo = yield* echoClient(port)
      const limit = Error.stackTraceLimit
      yield* recordingErrors((limits) =>
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* echo.unaryEcho({ message: "a" }), { message: "a" })
          assert.strictEqual(Error.stackTraceLimit, limit)
          const error = yield* Effect.flip(echo.clientStreamingEcho(Stream.make({ message: "b" })))
          assert.strictEqual(error.code, GrpcError.Status.NOT_FOUND)
          assert.strictEqual(error.message, "none here")
          assert.strictEqual(Error.stackTraceLimit, limit)
          // grpc-js's two caller-stack Errors were made with no stack to
          // capture (the others are the failed call's own error, built by
          // grpc-js and GrpcError once its status arrived).
          assert.strictEqual(limits.filter((l) => l === 0).length, 2)
        })
      )
    }))
})

describe("GrpcClient: a response Stream read slowly holds the server back", () => {
  it.effect("a plain grpc-js server's writes wait for 'drain'; the messages in flight stay bounded", () =>
    Effect.gen(function*() {
      const N = 3000
      let written = 0
      let consumed = 0
      let maxInFlight = 0
      let serverWaits = 0
      const { port } = yield* rawServer({
        serverStreamingEcho: (call) => {
          const payload = { message: "x".repeat(1024) }
          const pump = () => {
            while (written < N) {
              written++
              maxInFlight = Math.max(maxInFlight, written - consumed)
              if (!call.write(payload)) {
                serverWaits++
                call.once("drain", pump)
                return
              }
            }
            call.end()
          }
          pump()
        }
      })
      const echo = yield* echoClient(port)
      const count = yield* echo.serverStreamingEcho({ message: "go" }).pipe(
        // slow: each message costs trips through the scheduler, which let
        // grpc-js and HTTP/2 run in between
        Stream.mapEffect(() => Effect.map(Effect.andThen(Effect.yieldNow, Effect.yieldNow), () => consumed++)),
        Stream.runCount
      )
      assert.strictEqual(count, N)
      assert.isAbove(serverWaits, 0, "the server was held back")
      // HTTP/2's windows (64 KiB per stream by default) and the client's 16
      // messages asked for ahead: about 100 messages of 1 KiB.
      assert.isAtMost(maxInFlight, 400)
    }))
})

describe("GrpcClient: a response that does not decode", () => {
  // Field 1 (string) claiming 127 bytes that are not there.
  const garbage = Buffer.from([0x0a, 0x7f, 0x41])
  const bytes = (b: Buffer) => b
  const method = (name: string, responseStream: boolean) => ({
    path: `/grpc.examples.echo.Echo/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes
  })
  /** A plain grpc-js server that sends the bytes it is given as responses. */
  const bytesServer = (cancelled: Deferred.Deferred<void>) =>
    grpcServer({ UnaryEcho: method("UnaryEcho", false), ServerStreamingEcho: method("ServerStreamingEcho", true) }, {
      UnaryEcho: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, garbage),
      ServerStreamingEcho: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        call.on("cancelled", () => Deferred.doneUnsafe(cancelled, Exit.void))
        call.write(Buffer.from(EchoResponse.encode({ message: "first" }).finish()))
        call.write(garbage)
      }
    })

  it.effect("fails the call with INTERNAL 'Response message parsing error'; a stream after the responses before it, cancelling the call", () =>
    Effect.gen(function*() {
      const cancelled = yield* Deferred.make<void>()
      const { port } = yield* bytesServer(cancelled)
      // The client decodes responses itself (internal/client/decodeResponse.ts).
      const echo = yield* echoClient(port)
      const unary = yield* Effect.flip(echo.unaryEcho({ message: "x" }))
      assert.strictEqual(unary.code, GrpcError.Status.INTERNAL)
      assert.isTrue(unary.message.startsWith("Response message parsing error"), unary.message)
      const received: Array<string> = []
      const streamed = yield* Effect.flip(
        Stream.runForEach(echo.serverStreamingEcho({ message: "x" }), (r) => Effect.sync(() => received.push(r.message)))
      )
      assert.deepStrictEqual(received, ["first"])
      assert.strictEqual(streamed.code, GrpcError.Status.INTERNAL)
      assert.isTrue(streamed.message.startsWith("Response message parsing error"), streamed.message)
      // The server saw the call cancelled, as grpc-js's own client cancels it.
      yield* Deferred.await(cancelled)
    }))
})
