/**
 * A gRPC server whose handlers are Effect programs.
 *
 * `GrpcServer.layer` binds a grpc-js server for the lifetime of a Scope;
 * `GrpcServer.serve` registers a service on it. Each call runs as a fiber that
 * is interrupted when the call ends early: client cancel, deadline, dropped
 * connection, or shutdown after the grace period.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { GrpcError, GrpcServer } from "@fiber-grpc/grpc"
 * import { GreeterDefinition } from "./gen/greeter.js"
 *
 * const Greeter = GrpcServer.serve(GreeterDefinition, {
 *   sayHello: (req) =>
 *     req.name === ""
 *       ? Effect.fail(GrpcError.make(GrpcError.Status.INVALID_ARGUMENT, "name is required"))
 *       : Effect.succeed({ message: `Hello, ${req.name}` })
 * })
 *
 * Greeter.pipe(Layer.provide(GrpcServer.layer({ port: 50051 })), GrpcServer.runMain)
 * ```
 *
 * @since 0.1.0
 * @module
 */
import * as grpc from "@grpc/grpc-js"
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import {
  Cause,
  Config,
  Console,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  FiberSet,
  Layer,
  Scope,
  type Stream,
  SubscriptionRef
} from "effect"
import { CallContext, type ServerCallContext } from "./CallContext.js"
import type { GrpcError } from "./GrpcError.js"
import { handleBidiStreamingCall } from "./internal/server/handleBidiStreamingCall.js"
import { handleClientStreamingCall } from "./internal/server/handleClientStreamingCall.js"
import { handleServerStreamingCall } from "./internal/server/handleServerStreamingCall.js"
import { handleUnaryCall } from "./internal/server/handleUnaryCall.js"
import type * as GrpcMiddleware from "./GrpcMiddleware.js"
import { passBytes } from "./internal/codec.js"
import { applyMiddleware } from "./internal/server/middleware.js"
import * as Guards from "./internal/server/guards.js"
import { ForcingShutdown } from "./internal/callStatus.js"
import type { HandlerRuntime } from "./internal/server/runHandler.js"
import { type HandlersContext, type NoScope, type ServiceDefinition, type ServiceHandlers, toGrpcJs } from "./ServiceDefinition.js"

/**
 * How to run a server: where it binds, its shutdown grace period, its
 * resource limits, connection policy and server-wide middleware.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Interface to bind; default `"0.0.0.0"`. */
  readonly host?: string | undefined
  /** Port to bind; `0` picks a free one (read it back from `GrpcServer.port`). */
  readonly port: number
  /** Default: insecure (plaintext HTTP/2). */
  readonly credentials?: grpc.ServerCredentials | undefined
  /**
   * How long shutdown lets in-flight calls finish before interrupting their
   * handlers (their clients then see `UNAVAILABLE`). Wall-clock time. Default 10 seconds.
   */
  readonly gracePeriod?: Duration.Input | undefined
  /**
   * How long graceful shutdown keeps accepting new calls after the shutdown
   * hooks ran (`onShutdown`; health has turned every status `NOT_SERVING`)
   * and before it stops accepting and drains, so that probes polling at an
   * interval (a Kubernetes readiness probe's `periodSeconds` times its
   * `failureThreshold`) and load balancers move traffic away first. Counts
   * against `gracePeriod` (a longer delay is cut there). Measured with
   * Effect's `Clock`. Default: none.
   */
  readonly drainDelay?: Duration.Input | undefined
  /** Largest request message accepted; larger ones get `RESOURCE_EXHAUSTED`. Default 4 MiB (grpc-js's). */
  readonly maxReceiveMessageLength?: number | undefined
  /**
   * Largest response message sent; a larger one fails the call with
   * `RESOURCE_EXHAUSTED`. Default 4 MiB (grpc-js alone has no limit); `-1`
   * for none.
   */
  readonly maxSendMessageLength?: number | undefined
  /**
   * Calls (HTTP/2 streams) one connection may have open at once, advertised
   * as `SETTINGS_MAX_CONCURRENT_STREAMS`; a client queues calls beyond it,
   * and streams a peer opens past it are refused. Default 1000 (grpc-js
   * alone has no limit).
   */
  readonly maxConcurrentStreams?: number | undefined
  /**
   * Largest request metadata, in bytes as HTTP/2 counts a header list (each
   * name and value plus 32 per entry), advertised as
   * `SETTINGS_MAX_HEADER_LIST_SIZE`. A request with more is reset (the
   * client sees `INTERNAL` or `RESOURCE_EXHAUSTED`, by client). Default
   * 16 KiB, gRPC core's (Node alone: 64 KiB).
   */
  readonly maxMetadataSize?: number | undefined
  /**
   * Ping abuse (as gRPC core and grpc-go enforce it; grpc-js does not): a
   * PING sooner than this after the previous one, with no data sent by the
   * server in between, is a strike. Clients' keepalive intervals must be at
   * least this long. Default 5 seconds.
   */
  readonly minPingInterval?: Duration.Input | undefined
  /**
   * Strikes (see `minPingInterval`) allowed before the connection is closed
   * with a GOAWAY `ENHANCE_YOUR_CALM` "too_many_pings". Default 2; `Infinity`
   * turns the enforcement off.
   */
  readonly maxPingStrikes?: number | undefined
  /**
   * Rapid reset (CVE-2023-44487): RST_STREAM frames a peer may send on one
   * connection, as a token bucket of `burst` refilled by `perSecond`. A
   * peer past it gets GOAWAY `INTERNAL_ERROR` from Node's HTTP/2 layer and
   * the connection is closed; its other calls end with it. Default: Node's
   * own, a burst of 1000 and 33 a second (grpc-js alone cannot change it).
   * Lower it (Netty's server default is 200 in 30 seconds) when clients
   * never cancel in bulk; a client that cancels more than `perSecond` calls
   * a second for long, hedging at a high rate for example, loses its connection.
   * Both are whole numbers up to 2^32 - 1 (`perSecond: 0` never refills);
   * `Infinity` turns the limit off. Any other value fails `make` with
   * `GrpcServerError` (Node would silently make it a bucket of about 0).
   */
  readonly resetStreamLimit?: { readonly burst: number; readonly perSecond: number } | undefined
  /** Any other grpc-js server option (compression, ...); the typed options above and below win over it. */
  readonly serverOptions?: grpc.ServerOptions | undefined
  /**
   * grpc-js's channelz bookkeeping for this server: its calls, connections
   * and per-connection message counts with timestamps, which a channelz
   * client reads. Default `false`: grpc-js keeps it on by default and pays
   * for it on every call and every message (a `Date.now()` and counters per
   * message received or sent: about 6% of the server's CPU per received
   * 64-byte message, measured in README "Where the streaming overhead
   * went"), and nothing in fiber-grpc reads it. Turn it on to inspect the
   * server with channelz: serve `grpc.getChannelzServiceDefinition()` with
   * `grpc.getChannelzHandlers()` from a plain grpc-js server in the same
   * process (channelz is process-wide). Set, it wins over
   * `grpc.enable_channelz` in `serverOptions`.
   */
  readonly channelz?: boolean | undefined
  /**
   * Middleware around every call of every service on this server, outermost
   * first, outside each service's own (see GrpcMiddleware). Server-wide
   * middleware cannot provide services to handlers; per-service middleware can.
   */
  readonly middleware?: ReadonlyArray<GrpcMiddleware.ServerMiddleware<never, never>> | undefined

  // -- Connections in a load-balanced fleet: keepalive and maximum connection age --
  /**
   * The server pings each connection every `time` and closes it when a ping
   * is not answered within `timeout`, so the calls of a client that vanished
   * (host gone, network cut, no FIN) are interrupted instead of hanging.
   * Regular pings also keep idle connections open through NATs and L4 load
   * balancers that drop silent flows. `false` turns pinging off (grpc-js's
   * own default). Default: every 1 minute, 20 seconds to answer.
   */
  readonly keepalive?: false | {
    /** Interval between pings. Default 1 minute. */
    readonly time?: Duration.Input | undefined
    /** How long a ping may go unanswered before the connection is closed. Default 20 seconds. */
    readonly timeout?: Duration.Input | undefined
  } | undefined
  /**
   * A connection older than this (plus or minus 10% jitter, added by grpc-js)
   * gets a GOAWAY: its calls carry on, but the client opens a new connection
   * for the next ones, re-resolving the target. That is how long-lived
   * clients spread onto servers added after they connected. `"Infinity"`
   * keeps connections forever (grpc-js's own default). Default 30 minutes.
   */
  readonly maxConnectionAge?: Duration.Input | undefined
  /**
   * How long calls still running on a connection that reached
   * `maxConnectionAge` may go on before the connection is closed under them
   * (their clients see `UNAVAILABLE`). Default `"Infinity"`: calls are never
   * cut for age, so long streams are safe; set it (e.g. to the longest call
   * you expect) when every connection must eventually move.
   */
  readonly maxConnectionAgeGrace?: Duration.Input | undefined
}

/** grpc-js keys of the connection block of `Options`, with its defaults. */
const connectionKeys = [
  ["grpc.keepalive_time_ms", (o: Options) => o.keepalive === false ? "Infinity" : o.keepalive?.time, Duration.minutes(1)],
  ["grpc.keepalive_timeout_ms", (o: Options) => o.keepalive === false ? undefined : o.keepalive?.timeout, Duration.seconds(20)],
  ["grpc.max_connection_age_ms", (o: Options) => o.maxConnectionAge, Duration.minutes(30)],
  ["grpc.max_connection_age_grace_ms", (o: Options) => o.maxConnectionAgeGrace, Duration.infinity]
] as const

/**
 * grpc-js server options for the connection block of `Options`: the
 * defaults first (a raw `serverOptions` key replaces one), then the typed
 * values. An infinite duration leaves the key out, which grpc-js reads as never.
 */
const connectionOptions = (options: Options): { defaults: grpc.ServerOptions; explicit: grpc.ServerOptions } => {
  const defaults: Record<string, number> = {}
  const explicit: Record<string, number> = {}
  const remove: Record<string, undefined> = {}
  for (const [key, read, fallback] of connectionKeys) {
    const given = read(options)
    const ms = Duration.toMillis(Duration.fromInputUnsafe(given ?? fallback))
    // grpc-js timers take at most 2^31 - 1 ms (about 24.8 days).
    const value = Number.isFinite(ms) ? Math.min(Math.round(ms), 2 ** 31 - 1) : undefined
    if (given === undefined) {
      if (value !== undefined) defaults[key] = value
    } else if (value === undefined) {
      remove[key] = undefined
    } else {
      explicit[key] = value
    }
  }
  return { defaults, explicit: { ...explicit, ...remove } }
}

/**
 * Binding the server failed (port in use, bad address, ...).
 *
 * @since 0.1.0
 */
export class GrpcServerError extends Data.TaggedError("GrpcServerError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A bound, running server.
 *
 * @since 0.1.0
 */
export class GrpcServer extends Context.Service<GrpcServer, {
  /** The bound address; `port` is the real one when `0` was asked for. */
  readonly host: string
  readonly port: number
  /**
   * Registers a service for the current Scope, wrapped in `middleware` (see
   * `serve`, its Layer form). Typed as `serve`: the Effect requires what the
   * handlers need, minus what the middleware provides, plus what it requires;
   * handlers and middleware get those services from the context it runs in.
   */
  readonly addService: <
    S extends ServiceDefinition,
    H extends ServiceHandlers<S>,
    const M extends ReadonlyArray<GrpcMiddleware.AnyServerMiddleware> = []
  >(
    definition: S,
    handlers: H & NoScope<H>,
    middleware?: M
  ) => Effect.Effect<void, never, Scope.Scope | GrpcMiddleware.Apply<M, HandlersContext<H>>>
  /** The services registered now, in registration order (what the server serves). */
  readonly services: Effect.Effect<ReadonlyArray<ServiceDefinition>>
  /** The registered services now, and again after every registration or removal. */
  readonly servicesChanges: Stream.Stream<ReadonlyArray<ServiceDefinition>>
  /**
   * Runs `hook` when graceful shutdown starts, before the server stops
   * accepting calls and drains (health uses it to report `NOT_SERVING`).
   * The hook is removed when the current Scope closes. Keep it short: it
   * delays the drain, and the hooks' time counts against the grace period.
   */
  readonly onShutdown: (hook: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /** Handler fibers running now. */
  readonly activeCalls: Effect.Effect<number>
  /** Completes when no handler fiber is running. */
  readonly awaitIdle: Effect.Effect<void>
  /**
   * Graceful shutdown, as on release: stop accepting calls, let in-flight ones
   * finish within the grace period, interrupt the rest, close connections.
   * Idempotent; later callers wait for the first.
   */
  readonly shutdown: Effect.Effect<void>
}>()("@fiber-grpc/grpc/GrpcServer") {}

/**
 * The defaults this library sets for the resource limits of `Options`: send
 * size, concurrent streams, metadata size, ping policing and rapid resets
 * (Node's own limit, made explicit). Not listed here:
 * `maxReceiveMessageLength` (grpc-js's own 4 MiB applies), keepalive and
 * connection age (their defaults are given on their fields of `Options`).
 *
 * @since 0.1.0
 */
export const defaults = {
  maxSendMessageLength: 4 * 1024 * 1024,
  maxConcurrentStreams: 1000,
  maxMetadataSize: 16 * 1024,
  minPingInterval: Duration.seconds(5),
  maxPingStrikes: 2,
  resetStreamLimit: { burst: 1000, perSecond: 33 }
} as const

// Shutdown's last step: interrupt what is left and flush its statuses.
const forceMillis = 1000

/**
 * Binds a server in the current Scope. Closing the Scope shuts it down
 * gracefully, and returns within the grace period plus one second, also when
 * peers have stopped reading and many streams are in flight (a process run
 * with `runMain` has exited by then, give or take process teardown).
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const host = options.host ?? "0.0.0.0"
  const gracePeriod = Duration.toMillis(Duration.fromInputUnsafe(options.gracePeriod ?? Duration.seconds(10)))
  const drainDelay = options.drainDelay === undefined ? undefined : Duration.fromInputUnsafe(options.drainDelay)
  const connection = connectionOptions(options)
  const server = new grpc.Server({
    ...connection.defaults,
    "grpc.max_send_message_length": defaults.maxSendMessageLength,
    "grpc.max_concurrent_streams": defaults.maxConcurrentStreams,
    "grpc.enable_channelz": 0,
    ...options.serverOptions,
    ...connection.explicit,
    ...(options.channelz === undefined ? {} : { "grpc.enable_channelz": options.channelz ? 1 : 0 }),
    ...(options.maxReceiveMessageLength === undefined ? {} : { "grpc.max_receive_message_length": options.maxReceiveMessageLength }),
    ...(options.maxSendMessageLength === undefined ? {} : { "grpc.max_send_message_length": options.maxSendMessageLength }),
    ...(options.maxConcurrentStreams === undefined ? {} : { "grpc.max_concurrent_streams": options.maxConcurrentStreams })
  })
  const resetLimit = options.resetStreamLimit ?? defaults.resetStreamLimit
  if (!Guards.isValidResetLimit(resetLimit)) {
    return yield* new GrpcServerError({
      message: `resetStreamLimit: burst (from 1) and perSecond (from 0) must be whole numbers up to ${2 ** 32 - 1}, or Infinity ` +
        `(got ${resetLimit.burst} and ${resetLimit.perSecond})`
    })
  }
  if (!Guards.limitResets(server, resetLimit)) {
    return yield* new GrpcServerError({ message: "this @grpc/grpc-js version is not supported: its HTTP/2 server options cannot be found" })
  }
  const fibers = yield* FiberSet.make<unknown, GrpcError>()
  let forcing = false
  const services = yield* SubscriptionRef.make<ReadonlyArray<ServiceDefinition>>([])
  const shutdownHooks = new Set<{ readonly hook: Effect.Effect<void> }>()

  const port = yield* Effect.callback<number, GrpcServerError>((resume) => {
    const address = host.includes(":") ? `[${host}]:${options.port}` : `${host}:${options.port}`
    server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (error, port) =>
      resume(
        error
          ? Effect.fail(new GrpcServerError({ message: `cannot bind ${address}: ${error.message}`, cause: error }))
          : Effect.succeed(port)
      ))
    // Interrupted while binding: release whatever got bound.
    return Effect.sync(() => server.forceShutdown())
  })
  const guarded = Guards.install(server, {
    maxMetadataSize: options.maxMetadataSize ?? defaults.maxMetadataSize,
    minPingIntervalMs: Duration.toMillis(Duration.fromInputUnsafe(options.minPingInterval ?? defaults.minPingInterval)),
    maxPingStrikes: options.maxPingStrikes ?? defaults.maxPingStrikes
  })
  if (!guarded) {
    server.forceShutdown()
    return yield* new GrpcServerError({ message: "this @grpc/grpc-js version is not supported: its HTTP/2 servers cannot be found" })
  }

  // Uninterruptible, so that a caller giving up (e.g. with a timeout) cannot
  // leave the cached shutdown half done for the next caller to start over.
  const shutdown = yield* Effect.cached(Effect.uninterruptible(Effect.gen(function*() {
    // 0. Hooks (health turns NOT_SERVING) run while calls are still accepted.
    //    Their time counts against the grace period.
    const started = Date.now()
    if (shutdownHooks.size > 0) {
      yield* finishesWithin(Effect.forEach([...shutdownHooks], ({ hook }) => hook, { discard: true }), gracePeriod)
    }
    // 0b. The drain delay: still accepting, so that polling probes see NOT_SERVING.
    if (drainDelay !== undefined) {
      yield* finishesWithin(Effect.sleep(drainDelay), Math.max(0, gracePeriod - (Date.now() - started)))
    }
    // 1. Stop accepting; tryShutdown's callback fires once every call is done.
    const drained = yield* Deferred.make<void>()
    server.tryShutdown(() => Deferred.doneUnsafe(drained, Exit.void))
    const left = Math.max(0, gracePeriod - (Date.now() - started))
    if (yield* finishesWithin(Deferred.await(drained), left)) return
    // 2. Interrupt the handlers still running (each answers UNAVAILABLE) and
    //    give those statuses one second, in all, to be flushed; then close
    //    every connection, whatever is left. The drain never completes while
    //    a peer that stopped reading holds a stream open, so this second is
    //    a bound, not a wait for something that must happen.
    forcing = true
    yield* finishesWithin(Effect.andThen(FiberSet.clear(fibers), Deferred.await(drained)), forceMillis)
    server.forceShutdown()
  })))
  yield* Effect.addFinalizer(() => shutdown)

  const addService = <S extends ServiceDefinition>(
    definition: S,
    handlers: ServiceHandlers<S>,
    middleware: ReadonlyArray<GrpcMiddleware.AnyServerMiddleware> = []
  ) =>
    Effect.gen(function*() {
      // The registering layer's own Scope is left out of the handlers'
      // context: a handler's scoped resources must not live until shutdown
      // (`serve` rejects handlers that require Scope at compile time).
      const isForcingShutdown = () => forcing
      const context = Context.add(Context.omit(Scope.Scope)(yield* Effect.context<never>()), ForcingShutdown, isForcingShutdown)
      const runFork = yield* Effect.provideContext(FiberSet.runtime(fibers)<never>(), context)
      const forkCall = <A>(program: Effect.Effect<A, GrpcError, CallContext>, ctx: ServerCallContext) => {
        // A closed FiberSet gives an interrupted fiber without running the program.
        if (fibers.state._tag === "Closed") return runFork(program as Effect.Effect<A, GrpcError>)
        const fiber = Effect.runForkWith(Context.add(context, CallContext, ctx))(program)
        if (fiber.pollUnsafe() === undefined) FiberSet.addUnsafe(fibers, fiber)
        return fiber
      }
      const runtime: HandlerRuntime = { runFork, forkCall, isForcingShutdown }
      const grpcDefinition: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...toGrpcJs(definition, true) }
      const chain = options.middleware === undefined ? middleware : [...options.middleware, ...middleware]
      const implementation: grpc.UntypedServiceImplementation = {}
      for (const key of Object.keys(definition.methods)) {
        const method = grpcDefinition[key]!
        // grpc-js hands the adapter each request's bytes, and the adapter
        // decodes them as the handler takes them (internal/server/decodeRequest.ts).
        grpcDefinition[key] = { ...method, requestDeserialize: passBytes }
        if (chain.length === 0) {
          implementation[key] = adapt(runtime, definition.methods[key]!, handlers[key], method.requestDeserialize)
        } else {
          const applied = applyMiddleware(runtime, method, handlers[key], chain)
          implementation[key] = adapt(applied.runtime, definition.methods[key]!, applied.handler, applied.decode)
        }
      }
      server.addService(grpcDefinition, implementation)
      yield* SubscriptionRef.update(services, (all) => [...all, definition])
      yield* Effect.addFinalizer(() =>
        Effect.andThen(
          Effect.sync(() => server.removeService(grpcDefinition)),
          SubscriptionRef.update(services, (all) => all.filter((d) => d !== definition))
        )
      )
    })

  const onShutdown = (hook: Effect.Effect<void>) => {
    const entry = { hook }
    return Effect.acquireRelease(
      Effect.sync(() => shutdownHooks.add(entry)),
      () => Effect.sync(() => shutdownHooks.delete(entry))
    )
  }

  return GrpcServer.of({
    host,
    port,
    addService,
    services: SubscriptionRef.get(services),
    servicesChanges: SubscriptionRef.changes(services),
    onShutdown: (hook) => Effect.asVoid(onShutdown(hook)),
    activeCalls: FiberSet.size(fibers),
    awaitIdle: FiberSet.awaitEmpty(fibers),
    shutdown
  })
})

/**
 * Picks the adapter for a method's call kind. The handler's own type was
 * checked against the definition by `ServiceHandlers`; here it is treated as
 * needing only `CallContext` because `runFork` carries the rest of its
 * services (captured when the service was registered).
 */
const adapt = (
  runtime: HandlerRuntime,
  method: ServiceDefinition["methods"][string],
  handler: unknown,
  decode: (bytes: Buffer) => unknown
): grpc.UntypedHandleCall => {
  // grpc-js boundary: handlers are stored untyped by grpc-js; the kind below
  // is the same one `ServiceHandlers` used to type this handler.
  const h = handler as (input: unknown, ctx: CallContext["Service"]) => never
  if (method.requestStream) {
    return method.responseStream
      ? handleBidiStreamingCall(runtime, h, decode)
      : handleClientStreamingCall(runtime, h, decode)
  }
  return method.responseStream ? handleServerStreamingCall(runtime, h, decode) : handleUnaryCall(runtime, h, decode)
}

/**
 * Runs `effect` for at most `millis` of wall-clock time; true if it finished.
 * A non-finite `millis` (e.g. `gracePeriod: "Infinity"`) waits as long as it
 * takes, and a longer one than a Node timer holds is clamped: Node fires a
 * timer above 2^31-1 ms (or Infinity) after 1 ms.
 */
const finishesWithin = (effect: Effect.Effect<void>, millis: number): Effect.Effect<boolean> =>
  Number.isFinite(millis)
    ? Effect.raceFirst(
      Effect.as(effect, true),
      // A real timer on purpose: shutdown must end in bounded wall time even
      // when the server runs under a TestClock.
      Effect.callback<boolean>((resume) => {
        const timer = setTimeout(() => resume(Effect.succeed(false)), Math.min(millis, maxTimerMillis))
        return Effect.sync(() => clearTimeout(timer))
      })
    )
    : Effect.as(effect, true)

const maxTimerMillis = 2 ** 31 - 1

/**
 * The server as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<GrpcServer, GrpcServerError> =>
  Layer.effect(GrpcServer, make(options))

/**
 * The server as a Layer whose options come from `Config` (e.g. `{ port: Config.Int("PORT") }`).
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: Config.Wrap<Options>
): Layer.Layer<GrpcServer, GrpcServerError | Config.ConfigError> =>
  Layer.effect(GrpcServer, Effect.flatMap(Config.unwrap(options), make))

/**
 * The options of `layerTest`: `127.0.0.1`, an ephemeral port, a one-second grace period.
 *
 * @since 0.1.0
 */
export const testOptions: Options = { host: "127.0.0.1", port: 0, gracePeriod: Duration.seconds(1) }

/**
 * A server on `127.0.0.1` with an ephemeral port and a short grace period, for tests.
 *
 * @since 0.1.0
 */
export const layerTest: Layer.Layer<GrpcServer, GrpcServerError> = layer(testOptions)

/**
 * Serves a service on the `GrpcServer` in context. Handler types are inferred
 * from the ts-proto generic definition; their requirements become the
 * Layer's. Handlers run with the services of the context that builds this
 * Layer, including its `Clock` (a server built in an `it.effect` test runs its
 * handlers on that test's `TestClock`).
 *
 * Releasing the Layer shuts the server down gracefully first, so in-flight
 * handlers finish while the services they use are still alive.
 *
 * `options.middleware` wraps every call of this service, outermost first
 * (see GrpcMiddleware): the services it provides leave the Layer's
 * requirements, the services it requires join them.
 *
 * @since 0.1.0
 */
export const serve = <
  S extends ServiceDefinition,
  H extends ServiceHandlers<S>,
  const M extends ReadonlyArray<GrpcMiddleware.AnyServerMiddleware> = []
>(
  definition: S,
  handlers: H & NoScope<H>,
  options?: { readonly middleware?: M | undefined }
): Layer.Layer<never, never, GrpcServer | GrpcMiddleware.Apply<M, HandlersContext<H>>> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const server = yield* GrpcServer
    yield* server.addService(definition, handlers, options?.middleware)
    // Added last so it runs first on release, before the service is removed.
    yield* Effect.addFinalizer(() => server.shutdown)
  }))

/**
 * The bound port of the server in context.
 *
 * @since 0.1.0
 */
export const port: Effect.Effect<number, never, GrpcServer> = GrpcServer.use((server) => Effect.succeed(server.port))


/**
 * A Layer that prints `listening on <port>` once the server in context is
 * bound: the line scripts and test harnesses wait for.
 *
 * @since 0.1.0
 */
export const layerAnnounce: Layer.Layer<never, never, GrpcServer> = Layer.effectDiscard(
  Effect.flatMap(port, (p) => Console.log(`listening on ${p}`))
)

/**
 * Runs a server Layer as the process's main program until SIGINT or SIGTERM,
 * then shuts it down gracefully (see `make`) and exits with code 0. A failure
 * to start (e.g. the port is taken) is reported and exits with code 1.
 *
 * @since 0.1.0
 */
export const runMain = <E>(main: Layer.Layer<never, E>): void =>
  NodeRuntime.runMain(Layer.launch(main), {
    teardown: (exit, onExit) => onExit(Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? 1 : 0)
  })
