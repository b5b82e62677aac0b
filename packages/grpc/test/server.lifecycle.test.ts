import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Config, ConfigProvider, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { GrpcError, GrpcServer } from "../src/index.js"
import { collect, rawClient, startEcho, unaryCall } from "./helpers.js"

describe("GrpcServer: lifecycle", () => {
  it.effect("binds port 0 to a free port and reports it", () =>
    Effect.gen(function*() {
      const a = yield* startEcho({ unaryEcho: Effect.succeed })
      const b = yield* startEcho({ unaryEcho: Effect.succeed })
      assert.isAbove(a.server.port, 0)
      assert.notStrictEqual(a.server.port, b.server.port)
    }))

  it.effect("layerConfig reads its options from Config", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(GrpcServer.layerConfig({
        host: Config.String("GRPC_HOST"),
        port: Config.Int("GRPC_PORT"), // Config.Port rejects 0, the ephemeral port
        gracePeriod: Config.succeed("1 second")
      })).pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({ GRPC_HOST: "127.0.0.1", GRPC_PORT: 0 }))
      )
      const server = Context.get(context, GrpcServer.GrpcServer)
      assert.strictEqual(server.host, "127.0.0.1")
      assert.isAbove(server.port, 0)
    }))

  it.effect("binding a port in use fails with GrpcServerError", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({})
      // grpc-js also logs its own line for a failed bind ("E No address added
      // out of total 1 resolved") through its global logger; it is captured
      // here so that it does not look like a failure in the test output.
      const logged: Array<string> = []
      const error = yield* Effect.acquireUseRelease(
        Effect.sync(() => grpc.setLogger({ error: (...args: Array<unknown>) => logged.push(args.join(" ")) })),
        () => Layer.build(GrpcServer.layer({ host: "127.0.0.1", port: server.port })).pipe(Effect.flip),
        () => Effect.sync(() => grpc.setLogger(console))
      )
      assert.strictEqual(error._tag, "GrpcServerError")
      assert.include(error.message, `127.0.0.1:${server.port}`)
      assert.isTrue(logged.some((line) => line.includes("No address added")))
    }))

  // The grace period is wall-clock time, so this test runs on the live clock.
  // The short call is released by the test once shutdown has begun (a new
  // client is refused), not by a sleep racing the grace period: on a busy
  // machine a fixed sleep can outlast it. The grace period is a second, so
  // that the released call has ample time to be answered within it.
  it.live(
    "graceful shutdown: a short call finishes, a stream past the grace period is interrupted with UNAVAILABLE, closing is bounded",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const shortStarted = yield* Deferred.make<void>()
        const shortRelease = yield* Deferred.make<void>()
        const streamStarted = yield* Deferred.make<void>()
        const streamInterrupted = yield* Deferred.make<void>()
        const gracePeriod = 1000
        const { server } = yield* startEcho({
          unaryEcho: (req) =>
            Deferred.succeed(shortStarted, undefined).pipe(Effect.andThen(Deferred.await(shortRelease)), Effect.as(req)),
          serverStreamingEcho: () =>
            Stream.make({ message: "first" }).pipe(
              Stream.concat(Stream.fromEffect(Effect.andThen(Deferred.succeed(streamStarted, undefined), Effect.never))),
              Stream.onExit(() => Deferred.succeed(streamInterrupted, undefined))
            )
        }, { gracePeriod: Duration.millis(gracePeriod) }).pipe(Scope.provide(scope))
        const client = yield* rawClient(`127.0.0.1:${server.port}`)
        const short = yield* Effect.forkChild(unaryCall(client, { message: "short" }), { startImmediately: true })
        const long = yield* Effect.forkChild(collect(client.serverStreamingEcho({ message: "long" })), {
          startImmediately: true
        })
        yield* Deferred.await(shortStarted)
        yield* Deferred.await(streamStarted)

        const started = Date.now()
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void), { startImmediately: true })
        // Shutdown has begun: a new client is refused...
        const late = yield* rawClient(`127.0.0.1:${server.port}`)
        const refused = yield* unaryCall(late, { message: "late" }, { deadline: new Date(Date.now() + 2000) })
        assert.notStrictEqual(refused.code, grpc.status.OK)
        // ...while the call in flight may still finish.
        yield* Deferred.succeed(shortRelease, undefined)
        yield* Fiber.join(closing)
        const took = Date.now() - started

        const shortSeen = yield* Fiber.join(short)
        assert.strictEqual(shortSeen.code, grpc.status.OK)
        assert.deepStrictEqual(shortSeen.response, { message: "short" })
        const longSeen = yield* Fiber.join(long)
        assert.strictEqual(longSeen.code, grpc.status.UNAVAILABLE)
        assert.deepStrictEqual(longSeen.messages, [{ message: "first" }])
        yield* Deferred.await(streamInterrupted)
        // The stream was held for the whole grace period (a few ms of margin:
        // Date.now and the timers' monotonic clock round milliseconds apart).
        assert.isAtLeast(took, gracePeriod - 10, "waited for the grace period")
        // Shutdown's own bound is grace + 1 s (GrpcServer.make); the extra
        // second is slack for a loaded machine, far below what an unbounded
        // drain (the stream never ends by itself) would take.
        assert.isBelow(took, gracePeriod + 1000 + 1000, "bounded: grace + the interrupt window + slack")

        // Refused at once (nothing listens): the deadline only has to be longer
        // than a refused connection on a busy machine, or it would turn the
        // expected UNAVAILABLE into DEADLINE_EXCEEDED.
        const after = yield* unaryCall(client, { message: "late" }, { deadline: new Date(Date.now() + 10_000) })
        assert.strictEqual(after.code, grpc.status.UNAVAILABLE)
      })
  )

  // Node fires a setTimeout of Infinity (or above 2^31-1 ms) after 1 ms: an
  // unguarded timer would interrupt the call at once.
  it.live("gracePeriod \"Infinity\": shutdown waits for the call in flight", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const { server } = yield* startEcho({
        unaryEcho: (req) => Deferred.succeed(started, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as(req))
      }, { gracePeriod: "Infinity" }).pipe(Scope.provide(scope))
      const client = yield* rawClient(`127.0.0.1:${server.port}`)
      const inFlight = yield* Effect.forkChild(unaryCall(client, { message: "in flight" }), { startImmediately: true })
      yield* Deferred.await(started)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void), { startImmediately: true })
      // A call from a new client is refused once shutdown has begun: a round
      // trip, far longer than the 1 ms such a timer would take.
      const late = yield* rawClient(`127.0.0.1:${server.port}`)
      const refused = yield* unaryCall(late, { message: "late" }, { deadline: new Date(Date.now() + 2000) })
      assert.notStrictEqual(refused.code, grpc.status.OK)
      yield* Deferred.succeed(release, undefined)
      const seen = yield* Fiber.join(inFlight)
      assert.strictEqual(seen.code, grpc.status.OK)
      assert.deepStrictEqual(seen.response, { message: "in flight" })
      yield* Fiber.join(closing)
    }))

  it.live("shutdown with nothing in flight returns at once", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      yield* startEcho({ unaryEcho: Effect.succeed }, { gracePeriod: "1 hour" }).pipe(Scope.provide(scope))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      // "At once" against an hour of grace: the bound only has to tell the
      // two apart, so it leaves a loaded machine seconds of slack.
      assert.isBelow(Date.now() - started, 10_000)
    }))
})

describe("GrpcServer: handlers run with the services of the layer that built the server", () => {
  it.effect("Effect.sleep in a handler follows the test's TestClock", () =>
    Effect.gen(function*() {
      const sleeping = yield* Deferred.make<void>()
      const { client } = yield* startEcho({
        unaryEcho: (req) =>
          Deferred.succeed(sleeping, undefined).pipe(
            Effect.andThen(Effect.sleep("1 hour")),
            Effect.as({ message: `${req.message} after an hour` })
          )
      })
      const call = yield* Effect.forkChild(unaryCall(client, { message: "woke" }), { startImmediately: true })
      yield* Deferred.await(sleeping)
      yield* TestClock.adjust("1 hour")
      const seen = yield* Fiber.join(call)
      assert.deepStrictEqual(seen.response, { message: "woke after an hour" })
    }))

  it.effect("Effect.timeout in a handler fires in virtual time and becomes the call's status", () =>
    Effect.gen(function*() {
      const waiting = yield* Deferred.make<void>()
      const { client } = yield* startEcho({
        unaryEcho: () =>
          Deferred.succeed(waiting, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.timeoutOrElse({
              duration: "5 seconds",
              orElse: () => Effect.fail(GrpcError.make(GrpcError.Status.DEADLINE_EXCEEDED, "upstream took over 5s"))
            })
          )
      })
      const call = yield* Effect.forkChild(unaryCall(client, { message: "x" }), { startImmediately: true })
      yield* Deferred.await(waiting)
      yield* TestClock.adjust("5 seconds")
      const seen = yield* Fiber.join(call)
      assert.strictEqual(seen.code, grpc.status.DEADLINE_EXCEEDED)
      assert.strictEqual(seen.details, "upstream took over 5s")
    }))
})

describe("GrpcServer: bad input", () => {
  const RawEcho = grpc.makeGenericClientConstructor({
    unaryEcho: {
      path: "/grpc.examples.echo.Echo/UnaryEcho",
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (bytes: Buffer) => bytes
    }
  }, "Echo")
  /** Sends `bytes` as the request of a unary call, or of a server-streaming one; the status the client saw. */
  const rawBytes = (port: number, path: string, bytes: Buffer, serverStreaming = false) =>
    Effect.callback<grpc.StatusObject>((resume) => {
      const client = new RawEcho(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
      const pass = (b: Buffer) => b
      const call = serverStreaming
        ? client.makeServerStreamRequest(path, pass, pass, bytes).on("data", () => {}).on("error", () => {})
        : client.makeUnaryRequest(path, pass, pass, bytes, () => {})
      call.on("status", (status) => {
        client.close()
        resume(Effect.succeed(status))
      })
    })

  it.effect("an undecodable request gets INTERNAL 'Error deserializing request', its handler does not run, and the next call succeeds", () =>
    Effect.gen(function*() {
      const started: Array<string> = []
      const { server, client } = yield* startEcho({
        unaryEcho: (request) => Effect.sync(() => (started.push(request.message), request)),
        serverStreamingEcho: (request) => Stream.fromEffect(Effect.sync(() => (started.push(request.message), request)))
      })
      // Field 1 (string) claiming 127 bytes that are not there.
      const garbage = Buffer.from([0x0a, 0x7f, 0x41])
      const status = yield* rawBytes(server.port, "/grpc.examples.echo.Echo/UnaryEcho", garbage)
      assert.strictEqual(status.code, grpc.status.INTERNAL)
      assert.strictEqual(status.details, "Error deserializing request")
      // The server decodes requests itself (internal/server/decodeRequest.ts),
      // for a server-streaming call as its handler starts.
      const streamed = yield* rawBytes(server.port, "/grpc.examples.echo.Echo/ServerStreamingEcho", garbage, true)
      assert.strictEqual(streamed.code, grpc.status.INTERNAL)
      assert.strictEqual(streamed.details, "Error deserializing request")
      assert.deepStrictEqual(started, [])
      assert.deepStrictEqual((yield* unaryCall(client, { message: "next" })).response, { message: "next" })
      assert.deepStrictEqual(started, ["next"])
    }))

  it.effect("grpc-js holds only a request's bytes; the handler gets the decoded message", () =>
    Effect.gen(function*() {
      // Why the adapter decodes (internal/server/decodeRequest.ts): grpc-js
      // keeps what its deserializer returned reachable until the call's
      // HTTP/2 stream closes, after the handler has answered.
      const held: Array<unknown> = []
      const { client } = yield* startEcho({
        unaryEcho: (request, ctx) =>
          Effect.sync(() => {
            held.push((ctx.call as grpc.ServerUnaryCall<unknown, unknown>).request)
            return request
          })
      })
      assert.deepStrictEqual((yield* unaryCall(client, { message: "bytes" })).response, { message: "bytes" })
      assert.strictEqual(held.length, 1)
      assert.isTrue(Buffer.isBuffer(held[0]))
      assert.deepStrictEqual(EchoRequest.decode(held[0] as Buffer), { message: "bytes" })
    }))

  it.effect("an unknown method gets UNIMPLEMENTED", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({})
      const status = yield* rawBytes(server.port, "/grpc.examples.echo.Echo/NoSuchMethod", Buffer.alloc(0))
      assert.strictEqual(status.code, grpc.status.UNIMPLEMENTED)
      const other = yield* rawBytes(server.port, "/no.such.Service/Method", Buffer.alloc(0))
      assert.strictEqual(other.code, grpc.status.UNIMPLEMENTED)
    }))

  it.effect("an oversized request or response gets RESOURCE_EXHAUSTED and the next call succeeds", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: (req) => Effect.succeed({ message: req.message === "big reply" ? "x".repeat(4096) : req.message })
      }, { maxReceiveMessageLength: 1024, maxSendMessageLength: 2048 })
      const tooBig = yield* unaryCall(client, { message: "x".repeat(2000) })
      assert.strictEqual(tooBig.code, grpc.status.RESOURCE_EXHAUSTED)
      const replyTooBig = yield* unaryCall(client, { message: "big reply" })
      assert.strictEqual(replyTooBig.code, grpc.status.RESOURCE_EXHAUSTED)
      assert.deepStrictEqual((yield* unaryCall(client, { message: "small" })).response, { message: "small" })
    }))
})

