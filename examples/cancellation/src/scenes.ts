/**
 * The scenario of gRPC's cancellation guide: Client -> Server1 -> Server2.
 *
 * Server1's UnaryEcho handler fans out to Server2 with `Effect.all`: two unary
 * calls and one server-streaming call. Neither server has a line of
 * cancellation or deadline code; the finalizers below only report what
 * happened.
 *
 * Each scene ends the client's call early in a different way and waits for
 * the events that prove the whole chain stopped: Server1's handler fiber and
 * its upstream call fibers interrupted, and Server2's handlers interrupted
 * (they only learn of it over the wire, as RST_STREAM CANCEL or an expired
 * grpc-timeout).
 */
import { GrpcClient, GrpcError, GrpcServer, GrpcTracing } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Schedule, Stream } from "effect"
import type { TraceCollector } from "./traceTree.js"

/** One thing that must happen for a scene to pass. */
type Expected = string

export interface SceneResult {
  readonly name: string
  readonly passed: boolean
  readonly missing: ReadonlyArray<Expected>
  readonly lines: ReadonlyArray<string>
}

/** Collects a scene's timeline and completes a latch per expected event. */
class Timeline {
  readonly lines: Array<string> = []
  readonly started = Date.now()
  constructor(readonly expected: Map<Expected, Deferred.Deferred<void>>, private readonly print: (line: string) => void) {}
  mark(who: string, what: string, ...keys: ReadonlyArray<Expected>): Effect.Effect<void> {
    return Effect.sync(() => {
      const line = `  ${String(Date.now() - this.started).padStart(5)} ms  ${who.padEnd(8)} ${what}`
      this.lines.push(line)
      this.print(line)
      for (const key of [`${who} ${what}`, ...keys]) {
        const latch = this.expected.get(key)
        if (latch) Deferred.doneUnsafe(latch, Exit.void)
      }
    })
  }
}

/** The scene currently running (scenes run one after the other). */
class CurrentScene extends Context.Service<CurrentScene, { current: Timeline | undefined; upstreamStarted: Deferred.Deferred<void> | undefined; startedCount: number }>()(
  "demo/CurrentScene"
) {}

const timeline = CurrentScene.use((s) => Effect.succeed(s.current!))
const mark = (who: string, what: string, ...keys: ReadonlyArray<Expected>) =>
  Effect.flatMap(timeline, (t) => t.mark(who, what, ...keys))

const remaining = (deadline: Option.Option<Date>) =>
  Option.match(deadline, {
    onNone: () => "no deadline",
    onSome: (d) => `deadline in ${Math.max(0, d.getTime() - Date.now())} ms`
  })

const describeExit = (exit: Exit.Exit<unknown, GrpcError.GrpcError>) =>
  Exit.isSuccess(exit)
    ? "succeeded"
    : Option.match(Exit.findErrorOption(exit), {
      onNone: () => "was interrupted",
      onSome: (e) => `failed with ${e.codeName}: ${e.message}`
    })

/** Server2: the backend. Its handlers run until they are interrupted. */
const Server2 = GrpcServer.serve(EchoDefinition, {
  unaryEcho: (req, ctx) =>
    Effect.gen(function*() {
      const scene = yield* CurrentScene
      yield* mark("server2", `${req.message}: handler started (${remaining(ctx.deadline)})`, `server2 ${req.message} started`)
      scene.startedCount++
      if (scene.startedCount === 3) Deferred.doneUnsafe(scene.upstreamStarted!, Exit.void)
      if (req.message === "c-fails") {
        // fail once its siblings are in flight, so there is something to cancel
        yield* Deferred.await(scene.upstreamStarted!)
        yield* mark("server2", `${req.message}: failing with UNAVAILABLE`)
        return yield* GrpcError.make(GrpcError.Status.UNAVAILABLE, "backend c is down")
      }
      return yield* Effect.never
    }).pipe(Effect.onInterrupt(() => mark("server2", `${req.message}: handler interrupted`))),
  serverStreamingEcho: (req, ctx) =>
    Stream.fromEffect(Effect.gen(function*() {
      const scene = yield* CurrentScene
      yield* mark("server2", `${req.message}: stream started (${remaining(ctx.deadline)})`, `server2 ${req.message} started`)
      scene.startedCount++
      if (scene.startedCount === 3) Deferred.doneUnsafe(scene.upstreamStarted!, Exit.void)
    })).pipe(
      Stream.flatMap(() => Stream.fromSchedule(Schedule.spaced("20 millis"))),
      Stream.map((i) => ({ message: `${req.message} #${i}` })),
      Stream.onExit((exit) =>
        Exit.hasInterrupts(exit) ? mark("server2", `${req.message}: stream handler interrupted`) : Effect.void
      )
    ),
  clientStreamingEcho: () => Effect.fail(GrpcError.make(GrpcError.Status.UNIMPLEMENTED, "not in this demo")),
  bidirectionalStreamingEcho: () => Stream.fail(GrpcError.make(GrpcError.Status.UNIMPLEMENTED, "not in this demo"))
})

class Backend extends Context.Service<Backend, GrpcClient.Client<typeof EchoDefinition>>()("demo/Backend") {}

/** Server1: fans out to Server2. No cancellation or deadline code here either. */
const Server1 = GrpcServer.serve(EchoDefinition, {
  unaryEcho: (req) =>
    Effect.gen(function*() {
      const backend = yield* Backend
      // Reports how each upstream call ended; "stopped" covers both ways.
      const upstream = <A, R>(name: string, call: Effect.Effect<A, GrpcError.GrpcError, R>) =>
        call.pipe(Effect.onExit((exit) =>
          Exit.hasInterrupts(exit)
            ? mark("server1", `upstream call ${name} interrupted`, `server1 upstream ${name} stopped`)
            : Exit.isFailure(exit)
            ? mark("server1", `upstream call ${name} ${describeExit(exit)}`, `server1 upstream ${name} stopped`)
            : Effect.void
        ))
      yield* Effect.all([
        upstream("a", backend.unaryEcho({ message: "a" })),
        upstream("ticks", Stream.runDrain(backend.serverStreamingEcho({ message: "ticks" }))),
        upstream(req.message === "fail" ? "c-fails" : "b", backend.unaryEcho({ message: req.message === "fail" ? "c-fails" : "b" }))
      ], { concurrency: "unbounded" })
      return { message: "unreachable: the backend never answers" }
    }).pipe(
      Effect.onExit((exit) =>
        Exit.hasInterrupts(exit)
          ? mark("server1", "handler interrupted", "server1 handler stopped")
          : Exit.isFailure(exit)
          ? mark("server1", `handler ${describeExit(exit)}; Effect.all interrupted its other upstream calls`, "server1 handler stopped")
          : Effect.void
      )
    ),
  serverStreamingEcho: () => Stream.empty,
  clientStreamingEcho: () => Effect.fail(GrpcError.make(GrpcError.Status.UNIMPLEMENTED, "not in this demo")),
  bidirectionalStreamingEcho: () => Stream.empty
})

interface Scene {
  readonly name: string
  readonly request: string
  readonly expected: ReadonlyArray<Expected>
  /** Runs the client's side; returns a description of how the call ended. */
  readonly run: (
    client: GrpcClient.Client<typeof EchoDefinition>,
    upstreamStarted: Deferred.Deferred<void>
  ) => Effect.Effect<string, never, CurrentScene>
}

/** Server2's handlers learn of the end only over the wire. */
const backendInterrupted: ReadonlyArray<Expected> = [
  "server2 a: handler interrupted",
  "server2 b: handler interrupted",
  "server2 ticks: stream handler interrupted"
]

export const scenes: ReadonlyArray<Scene> = [
  {
    name: "1. the client cancels",
    request: "cancel",
    expected: [
      "server1 handler interrupted",
      "server1 upstream call a interrupted",
      "server1 upstream call b interrupted",
      "server1 upstream call ticks interrupted",
      ...backendInterrupted
    ],
    run: (client, upstreamStarted) =>
      Effect.gen(function*() {
        const call = yield* Effect.forkChild(client.unaryEcho({ message: "cancel" }), { startImmediately: true })
        yield* Deferred.await(upstreamStarted)
        yield* mark("client", "interrupts its call fiber (RST_STREAM CANCEL)")
        return describeExit(yield* Fiber.interrupt(call).pipe(Effect.andThen(Fiber.await(call))))
      })
  },
  {
    name: "2. the client's deadline expires",
    request: "deadline",
    // Server1's upstream calls carry the same deadline, so each may end by
    // its own expiry (DEADLINE_EXCEEDED) or by Server1's interruption.
    expected: [
      "server1 handler stopped",
      "server1 upstream a stopped",
      "server1 upstream b stopped",
      "server1 upstream ticks stopped",
      ...backendInterrupted
    ],
    run: (client) =>
      Effect.gen(function*() {
        // A second: every upstream call must have reached Server2 before it
        // passes (scene 1 connected the channels), also on a busy machine.
        yield* mark("client", "calls with a 1 s deadline")
        const exit = yield* Effect.exit(client.unaryEcho({ message: "deadline" }, { timeout: Duration.seconds(1) }))
        return describeExit(exit)
      })
  },
  {
    name: "3. one upstream call fails",
    request: "fail",
    expected: [
      "server1 handler stopped",
      "server1 upstream call a interrupted",
      "server1 upstream call ticks interrupted",
      "server2 a: handler interrupted",
      "server2 ticks: stream handler interrupted"
    ],
    run: (client) => Effect.map(Effect.exit(client.unaryEcho({ message: "fail" })), describeExit)
  }
]

/**
 * Starts Server2, Server1 (with a client to Server2) and a client to Server1
 * on loopback ports. With `trace`, every server and client is traced
 * (GrpcTracing middleware) and each scene ends with its trace tree; the
 * caller runs this with `trace.layer` provided.
 */
export const runScenes = (print: (line: string) => void, trace?: TraceCollector) =>
  Effect.gen(function*() {
    const state: CurrentScene["Service"] = { current: undefined, upstreamStarted: undefined, startedCount: 0 }
    const withScene = Layer.succeed(CurrentScene, state)
    const serverLayer = trace === undefined
      ? GrpcServer.layerTest
      : GrpcServer.layer({ ...GrpcServer.testOptions, middleware: [GrpcTracing.server] })
    const clientMiddleware = trace === undefined ? [] : [GrpcTracing.client]
    const server2 = yield* Layer.build(Server2.pipe(Layer.provide(withScene), Layer.provideMerge(serverLayer)))
    const port2 = Context.get(server2, GrpcServer.GrpcServer).port
    const backend = Layer.effect(Backend, GrpcClient.make(EchoDefinition, { middleware: clientMiddleware })).pipe(
      Layer.provide(GrpcClient.layerChannel(`127.0.0.1:${port2}`))
    )
    const server1 = yield* Layer.build(
      Server1.pipe(Layer.provide(Layer.merge(backend, withScene)), Layer.provideMerge(serverLayer))
    )
    const port1 = Context.get(server1, GrpcServer.GrpcServer).port
    const client = GrpcClient.makeWith(yield* GrpcClient.makeChannel(`127.0.0.1:${port1}`), EchoDefinition, {
      middleware: clientMiddleware,
      context: Context.empty()
    })
    print(`Client -> Server1 (127.0.0.1:${port1}) -> Server2 (127.0.0.1:${port2})`)

    const results: Array<SceneResult> = []
    for (const scene of scenes) {
      print(`\n${scene.name}`)
      const expected = new Map<Expected, Deferred.Deferred<void>>()
      for (const key of scene.expected) expected.set(key, Deferred.makeUnsafe<void>())
      const t = new Timeline(expected, print)
      state.current = t
      state.startedCount = 0
      state.upstreamStarted = Deferred.makeUnsafe<void>()
      const ending = yield* Effect.provideService(scene.run(client, state.upstreamStarted), CurrentScene, state)
      yield* t.mark("client", `call ${ending}`)
      // Every expected event, or give up after two seconds.
      yield* Effect.all([...expected.values()].map(Deferred.await), { concurrency: "unbounded", discard: true }).pipe(
        Effect.timeoutOption("2 seconds")
      )
      const missing = [...expected].filter(([, d]) => !Deferred.isDoneUnsafe(d)).map(([key]) => key)
      results.push({ name: scene.name, passed: missing.length === 0, missing, lines: t.lines })
      for (const key of missing) print(`  MISSING: ${key}`)
      if (trace !== undefined) {
        // Every span has ended once no handler runs on either server.
        yield* Effect.all([server1, server2].map((c) => Context.get(c, GrpcServer.GrpcServer).awaitIdle), {
          concurrency: "unbounded",
          discard: true
        }).pipe(Effect.timeoutOption("2 seconds"))
        print("")
        print("  trace (OpenTelemetry SDK, in-memory exporter):")
        for (const line of trace.drain(t.started)) print(line)
      }
    }
    return results
  })
