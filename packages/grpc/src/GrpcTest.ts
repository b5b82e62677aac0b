/**
 * A test kit: serve a service on `127.0.0.1` with an ephemeral port and get a
 * channel to it, in one Layer.
 *
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { TestClock } from "effect/testing"
 * import { GrpcClient, GrpcTest } from "@fiber-grpc/grpc"
 *
 * it.effect("replies after a minute of virtual time", () =>
 *   Effect.gen(function*() {
 *     const echo = yield* GrpcClient.make(EchoDefinition)
 *     const reply = yield* Effect.forkChild(echo.unaryEcho({ message: "hi" }))
 *     yield* Deferred.await(handlerSleeping) // the request crossed HTTP/2 and the handler's timer exists
 *     yield* TestClock.adjust("1 minute")
 *     ...
 *   }).pipe(Effect.provide(GrpcTest.layer(EchoDefinition, handlers))))
 * ```
 *
 * **Which clock runs what.** Handlers run with the services of the context
 * that builds the Layer. Built inside `it.effect`, that includes the test's
 * `TestClock`, so `Effect.sleep`, `Effect.timeout` and `Schedule`-driven
 * retries in handlers (and in client code run by the test) advance only with
 * `TestClock.adjust`. HTTP/2 itself runs on real time: a call's deadline
 * (`grpc-timeout`) is enforced by grpc-js timers on both sides, and the
 * server's shutdown grace period is wall-clock time too.
 *
 * @since 0.1.0
 * @module
 */
import { Layer } from "effect"
import * as GrpcClient from "./GrpcClient.js"
import * as GrpcServer from "./GrpcServer.js"
import type { HandlersContext, NoScope, ServiceDefinition, ServiceHandlers } from "./ServiceDefinition.js"

/**
 * Serves `definition` with `handlers` on an ephemeral loopback port and
 * provides the `GrpcServer` and a `GrpcChannel` connected to it.
 *
 * @since 0.1.0
 */
export const layer = <S extends ServiceDefinition, H extends ServiceHandlers<S>>(
  definition: S,
  handlers: H & NoScope<H>,
  options?: Partial<GrpcServer.Options>
): Layer.Layer<
  GrpcServer.GrpcServer | GrpcClient.GrpcChannel,
  GrpcServer.GrpcServerError,
  HandlersContext<H>
> =>
  Layer.mergeAll(
    GrpcServer.serve(definition, handlers),
    Layer.effect(
      GrpcClient.GrpcChannel,
      GrpcServer.GrpcServer.use((server) => GrpcClient.makeChannel(`127.0.0.1:${server.port}`))
    )
  ).pipe(
    Layer.provideMerge(options === undefined ? GrpcServer.layerTest : GrpcServer.layer({ ...GrpcServer.testOptions, ...options }))
  )

