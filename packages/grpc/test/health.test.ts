/**
 * GrpcHealth over real HTTP/2, asked by a plain @grpc/grpc-js client that
 * encodes grpc.health.v1 with the generated codecs (no framework code on the
 * client side).
 */
import { assert, describe, it } from "@effect/vitest"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Queue, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { HealthCheckRequest, HealthCheckResponse } from "../src/generated/grpc/health/v1/health.js"
import { GrpcHealth, GrpcServer } from "../src/index.js"
import { echoDefaults, type EchoHandlers, rawClient, unaryCall } from "./helpers.js"

const { SERVING, NOT_SERVING, SERVICE_UNKNOWN } = GrpcHealth.ServingStatus

const serialize = (request: HealthCheckRequest) => Buffer.from(HealthCheckRequest.encode(request).finish())
const deserialize = (bytes: Buffer) => HealthCheckResponse.decode(bytes)

/** A server with Echo and health, in `scope`, and a raw grpc-js client to it. */
const start = (scope: Scope.Scope, options?: Partial<GrpcServer.Options>, echo?: Partial<EchoHandlers>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Layer.mergeAll(GrpcServer.serve(EchoDefinition, { ...echoDefaults, ...echo }), GrpcHealth.layer).pipe(
        Layer.provideMerge(GrpcServer.layer({ ...GrpcServer.testOptions, ...options }))
      )
    ).pipe(Scope.provide(scope))
    const server = Context.get(context, GrpcServer.GrpcServer)
    const health = Context.get(context, GrpcHealth.GrpcHealth)
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
      (client) => Effect.sync(() => client.close())
    )
    return { server, health, client }
  })

const check = (client: grpc.Client, service: string) =>
  Effect.callback<{ code: grpc.status; status?: number; details: string }>((resume) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      serialize,
      deserialize,
      { service },
      (error, response) =>
        resume(Effect.succeed(
          error
            ? { code: error.code, details: error.details }
            : { code: grpc.status.OK, status: response!.status, details: "" }
        ))
    )
  })

/** Opens a Watch; every status it receives goes to `received`; resolves with the final status. */
const watch = (client: grpc.Client, service: string, received: Queue.Queue<number>) =>
  Effect.callback<{ code: grpc.status; details: string }>((resume) => {
    const call = client.makeServerStreamRequest("/grpc.health.v1.Health/Watch", serialize, deserialize, { service })
    call.on("data", (response: HealthCheckResponse) => Queue.offerUnsafe(received, response.status))
    call.on("error", () => {})
    call.on("status", (status) => resume(Effect.succeed({ code: status.code, details: status.details })))
    return Effect.sync(() => call.cancel())
  })

describe("GrpcHealth", () => {
  it.effect("Check: registered services and \"\" are SERVING, unknown ones NOT_FOUND, the app can change a status", () =>
    Effect.gen(function*() {
      const { client, health } = yield* start(yield* Effect.scope)
      assert.deepStrictEqual(yield* check(client, ""), { code: grpc.status.OK, status: SERVING, details: "" })
      assert.deepStrictEqual(yield* check(client, "grpc.examples.echo.Echo"), { code: grpc.status.OK, status: SERVING, details: "" })
      assert.deepStrictEqual(yield* check(client, "grpc.health.v1.Health"), { code: grpc.status.OK, status: SERVING, details: "" })
      const unknown = yield* check(client, "no.such.Service")
      assert.strictEqual(unknown.code, grpc.status.NOT_FOUND)
      assert.include(unknown.details, "no.such.Service")

      yield* health.setStatus("grpc.examples.echo.Echo", NOT_SERVING)
      yield* health.setStatus("database", SERVING)
      assert.strictEqual((yield* check(client, "grpc.examples.echo.Echo")).status, NOT_SERVING)
      assert.strictEqual((yield* check(client, "database")).status, SERVING)
      yield* health.clearStatus("grpc.examples.echo.Echo")
      assert.strictEqual((yield* check(client, "grpc.examples.echo.Echo")).status, SERVING)
    }))

  it.effect("a handler sets a status through GrpcHealth in its context", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const context = yield* Layer.build(
        GrpcServer.serve(EchoDefinition, {
          ...echoDefaults,
          unaryEcho: (request) =>
            Effect.as(GrpcHealth.setStatus("grpc.examples.echo.Echo", NOT_SERVING), request)
        }).pipe(
          Layer.provideMerge(GrpcHealth.layer),
          Layer.provideMerge(GrpcServer.layer(GrpcServer.testOptions))
        )
      ).pipe(Scope.provide(scope))
      const server = Context.get(context, GrpcServer.GrpcServer)
      const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      yield* Effect.callback<void>((resume) => {
        client.makeUnaryRequest(
          "/grpc.examples.echo.Echo/UnaryEcho",
          (m: string) => Buffer.from(EchoDefinition.methods.unaryEcho.requestType.encode({ message: m }).finish()),
          (b: Buffer) => b,
          "hi",
          () => resume(Effect.void)
        )
      })
      assert.strictEqual((yield* check(client, "grpc.examples.echo.Echo")).status, NOT_SERVING)
    }))

  it.effect("Watch sends the current status, then every change; an unknown service gets SERVICE_UNKNOWN and the call stays open", () =>
    Effect.gen(function*() {
      const { client, health } = yield* start(yield* Effect.scope)
      const echo = yield* Queue.unbounded<number>()
      const echoWatch = yield* Effect.forkChild(watch(client, "grpc.examples.echo.Echo", echo))
      assert.strictEqual(yield* Queue.take(echo), SERVING)
      yield* health.setStatus("grpc.examples.echo.Echo", NOT_SERVING)
      assert.strictEqual(yield* Queue.take(echo), NOT_SERVING)
      // Setting the same status again sends nothing new.
      yield* health.setStatus("grpc.examples.echo.Echo", NOT_SERVING)
      yield* health.setStatus("grpc.examples.echo.Echo", SERVING)
      assert.strictEqual(yield* Queue.take(echo), SERVING)

      const later = yield* Queue.unbounded<number>()
      const laterWatch = yield* Effect.forkChild(watch(client, "later.Service", later))
      assert.strictEqual(yield* Queue.take(later), SERVICE_UNKNOWN)
      yield* health.setStatus("later.Service", NOT_SERVING)
      assert.strictEqual(yield* Queue.take(later), NOT_SERVING)
      assert.isUndefined(laterWatch.pollUnsafe())
      assert.isUndefined(echoWatch.pollUnsafe())
    }))

  // Shutdown's grace period is wall-clock time: live clock.
  it.effect("a Watch whose reader stops holds only the latest status, not every change since", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { health } = yield* start(scope)
      const service = "grpc.examples.echo.Echo"
      const pull = yield* Stream.toPull(health.watch(service))
      assert.deepStrictEqual(yield* pull, [SERVING])
      // The reader stops while the status changes 1000 times (each change in
      // its own turn, as when other fibers set them).
      for (let i = 0; i < 1000; i++) {
        yield* health.setStatus(service, i % 2 === 0 ? NOT_SERVING : SERVING)
        yield* Effect.yieldNow
      }
      yield* health.setStatus(service, SERVICE_UNKNOWN)
      let read = 0
      let last: number | undefined
      while (last !== SERVICE_UNKNOWN) {
        const chunk = yield* pull
        read += chunk.length
        last = chunk[chunk.length - 1]
      }
      assert.isAtMost(read, 3)
      yield* Scope.close(scope, Exit.void)
    }))

  it.live("graceful shutdown: every status turns NOT_SERVING first, Watch streams get it and end, in-flight calls still finish", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const inFlight = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const { client, server } = yield* start(scope, { gracePeriod: "30 seconds" }, {
        unaryEcho: (request) =>
          Deferred.succeed(inFlight, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as(request))
      })
      const all = yield* Queue.unbounded<number>()
      const unknown = yield* Queue.unbounded<number>()
      const allWatch = yield* Effect.forkChild(watch(client, "", all))
      const unknownWatch = yield* Effect.forkChild(watch(client, "no.such.Service", unknown))
      assert.strictEqual(yield* Queue.take(all), SERVING)
      assert.strictEqual(yield* Queue.take(unknown), SERVICE_UNKNOWN)

      // A call in flight when shutdown starts.
      const call = yield* Effect.forkChild(Effect.callback<grpc.status>((resume) => {
        client.makeUnaryRequest(
          "/grpc.examples.echo.Echo/UnaryEcho",
          (m: string) => Buffer.from(EchoDefinition.methods.unaryEcho.requestType.encode({ message: m }).finish()),
          (b: Buffer) => b,
          "in flight",
          (error) => resume(Effect.succeed(error ? error.code : grpc.status.OK))
        )
      }))
      yield* Deferred.await(inFlight)

      const started = Date.now()
      const shutdown = yield* Effect.forkChild(server.shutdown)
      // NOT_SERVING arrives while the in-flight call is still running (drain not over)...
      assert.strictEqual(yield* Queue.take(all), NOT_SERVING)
      assert.deepStrictEqual(yield* Fiber.join(allWatch), { code: grpc.status.OK, details: "OK" })
      assert.deepStrictEqual((yield* Fiber.join(unknownWatch)).code, grpc.status.OK)
      assert.isUndefined(call.pollUnsafe())
      // ...which then finishes normally, and shutdown ends long before its 30 s grace period.
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(yield* Fiber.join(call), grpc.status.OK)
      yield* Fiber.join(shutdown)
      assert.isBelow(Date.now() - started, 10_000)
      assert.strictEqual(yield* Queue.size(unknown), 0)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("GrpcServer drainDelay: after health turns NOT_SERVING the server keeps accepting new calls for the delay, then drains", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.build(
        Layer.mergeAll(
          GrpcServer.serve(EchoDefinition, { ...echoDefaults, unaryEcho: Effect.succeed }),
          GrpcHealth.layer
        ).pipe(Layer.provideMerge(
          GrpcServer.layer({ ...GrpcServer.testOptions, gracePeriod: "1 minute", drainDelay: "10 seconds" })
        ))
      ).pipe(Scope.provide(scope))
      const server = Context.get(context, GrpcServer.GrpcServer)
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
        (client) => Effect.sync(() => client.close())
      )
      const echoes = yield* rawClient(`127.0.0.1:${server.port}`)

      const shutdown = yield* Effect.forkChild(server.shutdown, { startImmediately: true })
      assert.deepStrictEqual(yield* check(client, ""), { code: grpc.status.OK, status: NOT_SERVING, details: "" })
      // The test clock has not moved: still inside the delay, so a new call is served.
      assert.strictEqual((yield* unaryCall(echoes, { message: "during the delay" })).code, grpc.status.OK)
      assert.isUndefined(shutdown.pollUnsafe())

      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(shutdown)
      assert.strictEqual((yield* unaryCall(echoes, { message: "after" })).code, grpc.status.UNAVAILABLE)
      yield* Scope.close(scope, Exit.void)
    }))

  it.live("GrpcServer.onShutdown: hooks run before the drain, in order; a hook that never ends is cut at the grace period", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.build(GrpcServer.layer({ ...GrpcServer.testOptions, gracePeriod: "300 millis" })).pipe(
        Scope.provide(scope)
      )
      const server = Context.get(context, GrpcServer.GrpcServer)
      const ran: Array<string> = []
      yield* server.onShutdown(Effect.sync(() => ran.push("first"))).pipe(Scope.provide(scope))
      yield* server.onShutdown(Effect.andThen(Effect.sync(() => ran.push("second")), Effect.never)).pipe(
        Scope.provide(scope)
      )
      const removed = yield* Scope.make()
      yield* server.onShutdown(Effect.sync(() => ran.push("removed"))).pipe(Scope.provide(removed))
      yield* Scope.close(removed, Exit.void)
      const started = Date.now()
      yield* server.shutdown
      assert.deepStrictEqual(ran, ["first", "second"])
      assert.isBelow(Date.now() - started, 5_000)
      yield* Scope.close(scope, Exit.void)
    }))
})
