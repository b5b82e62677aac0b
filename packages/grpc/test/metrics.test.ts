/**
 * Call metrics over real HTTP/2: durations recorded per method and status on
 * both sides, message counts of streaming calls, and export through
 * @effect/opentelemetry to an OpenTelemetry SDK reader.
 */
import { assert, describe, it } from "@effect/vitest"
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Metric, Scope, Stream } from "effect"
import { GrpcClient, GrpcError, GrpcMetrics, GrpcServer } from "../src/index.js"
import { echoDefaults, rawClient, unaryCall } from "./helpers.js"

const method = "grpc.examples.echo.Echo/UnaryEcho"

const durationCount = (metric: typeof GrpcMetrics.serverDuration, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)

const start = Effect.gen(function*() {
  const context = yield* Layer.build(
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: (req) =>
        req.message === "missing"
          ? Effect.fail(GrpcError.make(GrpcError.Status.NOT_FOUND, "no"))
          : req.message === "boom"
          ? Effect.fail(GrpcError.make(GrpcError.Status.UNAVAILABLE, "down"))
          : Effect.succeed(req),
      bidirectionalStreamingEcho: (requests) => Stream.flatMap(requests, (r) => Stream.make(r, r, r))
    }).pipe(Layer.provideMerge(GrpcServer.layer({ ...GrpcServer.testOptions, middleware: [GrpcMetrics.server] })))
  )
  const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${Context.get(context, GrpcServer.GrpcServer).port}`)
  return GrpcClient.makeWith(channel, EchoDefinition, { middleware: [GrpcMetrics.client], context: Context.empty() })
})

describe("GrpcMetrics", () => {
  it.effect("records call durations per method and status, on the server and the client", () =>
    Effect.gen(function*() {
      const ok = { "rpc.system.name": "grpc", "rpc.method": method, "rpc.response.status_code": "OK" }
      const notFound = { ...ok, "rpc.response.status_code": "NOT_FOUND" }
      const unavailable = { ...ok, "rpc.response.status_code": "UNAVAILABLE", "error.type": "UNAVAILABLE" }
      const before = yield* Effect.all([
        durationCount(GrpcMetrics.serverDuration, ok),
        durationCount(GrpcMetrics.serverDuration, notFound),
        durationCount(GrpcMetrics.serverDuration, unavailable)
      ])
      const echo = yield* start
      yield* echo.unaryEcho({ message: "a" })
      yield* echo.unaryEcho({ message: "b" })
      yield* Effect.flip(echo.unaryEcho({ message: "missing" }))
      yield* Effect.flip(echo.unaryEcho({ message: "boom" }))
      const after = yield* Effect.all([
        durationCount(GrpcMetrics.serverDuration, ok),
        durationCount(GrpcMetrics.serverDuration, notFound),
        durationCount(GrpcMetrics.serverDuration, unavailable)
      ])
      assert.deepStrictEqual(after.map((n, i) => n - before[i]!), [2, 1, 1])

      // The client side: every non-OK status is an error.type.
      const snapshot = yield* Metric.snapshot
      const client = snapshot.filter((m) => m.id === "rpc.client.call.duration" && m.attributes?.["rpc.method"] === method)
      const codes = client.map((m) => [m.attributes?.["rpc.response.status_code"], m.attributes?.["error.type"]])
      assert.deepInclude(codes, ["OK", undefined])
      assert.deepInclude(codes, ["NOT_FOUND", "NOT_FOUND"])
      assert.deepInclude(codes, ["UNAVAILABLE", "UNAVAILABLE"])
      assert.isTrue(client.every((m) => m.attributes?.["server.address"] === "127.0.0.1"))
    }))

  // The grace period is wall-clock time, so this test runs on the live clock.
  it.live("a call a forced shutdown interrupts is recorded as UNAVAILABLE, the status its client got", () =>
    Effect.gen(function*() {
      const unavailable = {
        "rpc.system.name": "grpc",
        "rpc.method": method,
        "rpc.response.status_code": "UNAVAILABLE",
        "error.type": "UNAVAILABLE"
      }
      const before = yield* durationCount(GrpcMetrics.serverDuration, unavailable)
      const scope = yield* Scope.make()
      const started = yield* Deferred.make<void>()
      const context = yield* Layer.build(
        GrpcServer.serve(EchoDefinition, {
          ...echoDefaults,
          unaryEcho: () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never)
        }).pipe(Layer.provideMerge(GrpcServer.layer({
          ...GrpcServer.testOptions,
          gracePeriod: "10 millis",
          middleware: [GrpcMetrics.server]
        })))
      ).pipe(Scope.provide(scope))
      const client = yield* rawClient(`127.0.0.1:${Context.get(context, GrpcServer.GrpcServer).port}`)
      const call = yield* Effect.forkChild(unaryCall(client, { message: "x" }), { startImmediately: true })
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* Fiber.join(call)).code, GrpcError.Status.UNAVAILABLE)
      assert.strictEqual((yield* durationCount(GrpcMetrics.serverDuration, unavailable)) - before, 1)
    }))

  it.effect("records the messages received and sent by streaming calls", () =>
    Effect.gen(function*() {
      const attributes = { "rpc.system.name": "grpc", "rpc.method": "grpc.examples.echo.Echo/BidirectionalStreamingEcho" }
      const sum = (metric: typeof GrpcMetrics.serverDuration) =>
        Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (s) => s.sum)
      const metrics = [
        GrpcMetrics.serverRequestsPerRpc,
        GrpcMetrics.serverResponsesPerRpc,
        GrpcMetrics.clientRequestsPerRpc,
        GrpcMetrics.clientResponsesPerRpc
      ]
      const before = yield* Effect.forEach(metrics, sum)
      const echo = yield* start
      const out = yield* Stream.runCollect(echo.bidirectionalStreamingEcho(Stream.make({ message: "x" }, { message: "y" })))
      assert.strictEqual(out.length, 6)
      const after = yield* Effect.forEach(metrics, sum)
      assert.deepStrictEqual(after.map((n, i) => n - before[i]!), [2, 6, 2, 6])
    }))

  it.effect("exports through @effect/opentelemetry to an OpenTelemetry metric reader", () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })
    return Effect.gen(function*() {
      const echo = yield* start
      yield* echo.unaryEcho({ message: "a" })
      yield* Effect.promise(() => reader.forceFlush())
      const names = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)))
      assert.include(names, "rpc.server.call.duration")
      assert.include(names, "rpc.client.call.duration")
    }).pipe(
      Effect.provide(OtelMetrics.layer(() => reader).pipe(Layer.provide(Resource.layer({ serviceName: "metrics-test" }))))
    )
  })
})
