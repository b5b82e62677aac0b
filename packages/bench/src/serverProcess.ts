/**
 * A benchmark server in its own process, driven by the orchestrator over IPC.
 *
 *   serverProcess.ts --impl framework|raw|protoloader|nice|rawcodec --mode echo|cancel [--next <port>] [--tracing] [--channelz]
 *
 * - `--impl`: the framework; plain grpc-js with ts-proto's codecs (`raw`) or
 *   with @grpc/proto-loader's (`protoloader`); nice-grpc on the same ts-proto
 *   definitions (`nice`); plain grpc-js with the adapter's codec
 *   (`rawcodec`, for profiling: the framework minus its Effect side).
 *   `cancel` mode exists for `framework` and `raw`.
 * - `echo`: the benchmark Echo service (echo.ts).
 * - `cancel`: UnaryEcho sends headers, then waits forever (or, with `--next`,
 *   calls the next hop and sends headers once that hop has); the handler's
 *   finalizer reports `{ fin: id, t }` (CLOCK_MONOTONIC, µs). The framework
 *   side uses `Effect.onInterrupt` and GrpcClient's automatic propagation; the
 *   raw side a hand-written `'cancelled'` listener that cancels the next hop.
 *
 * `--tracing` (framework only) serves every call through GrpcTracing.server
 * with Effect's default native tracer (no exporter): the tracing-on row.
 * `--channelz` (framework only) turns grpc-js's channelz on (`channelz: true`,
 * grpc-js's own default; fiber-grpc's is off).
 *
 * IPC requests: `cpu` (process.cpuUsage, µs), `stats` (after GC: heap, RSS,
 * active handles, live handler fibers), `{ profile: "start" | <file> }`
 * (profile.ts), `exit`.
 */
import { GrpcClient, GrpcServer, GrpcTracing } from "@fiber-grpc/grpc"
import type { CallContext } from "@fiber-grpc/grpc"
import { type ServiceHandlers, toGrpcJs } from "@fiber-grpc/grpc/ServiceDefinition"
import * as grpc from "@grpc/grpc-js"
import { EchoClient, EchoDefinition, type EchoServer, EchoService } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { createServer } from "nice-grpc"
import { frameworkEcho, niceEcho, protoLoaderEcho, rawEcho } from "./echo.js"
import { connect, nowMicros, parentEndpoint } from "./ipc.js"
import { startProfile, stopProfile } from "./profiler.js"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const impl = arg("impl") ?? "framework"
const mode = arg("mode") ?? "echo"
const next = arg("next")

export interface ServerStats {
  readonly heapUsed: number
  /** V8 heap committed (used or not). */
  readonly heapTotal: number
  readonly rss: number
  /** Off-heap memory of ArrayBuffers and Buffers (process.memoryUsage().arrayBuffers). */
  readonly arrayBuffers: number
  readonly handles: number
  readonly handleTypes: ReadonlyArray<string>
  readonly fibers: number
}

const gc = async () => {
  const collect = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 4; i++) {
    collect?.()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const stats = async (fibers: () => Promise<number>): Promise<ServerStats> => {
  await gc()
  const handleTypes = process.getActiveResourcesInfo().filter((t) => t !== "Timeout" && t !== "Immediate")
  return {
    heapUsed: process.memoryUsage().heapUsed,
    heapTotal: process.memoryUsage().heapTotal,
    rss: process.memoryUsage().rss,
    arrayBuffers: process.memoryUsage().arrayBuffers,
    handles: handleTypes.length,
    handleTypes,
    fibers: await fibers()
  }
}

/**
 * RSS after a memory-reducing collection (what V8 runs under memory
 * pressure: it also gives back the young generation's spare capacity and its
 * pool of freed pages): memory a full collection keeps but V8 can give back.
 */
const reducedRss = (): number => {
  type Gc = (options: { readonly type: "major"; readonly execution: "sync"; readonly flavor: "last-resort" }) => void
  ;(globalThis as { gc?: Gc }).gc?.({ type: "major", execution: "sync", flavor: "last-resort" })
  return process.memoryUsage().rss
}

const ipc = (fibers: () => Promise<number>) => {
  const peer = connect(parentEndpoint(), (body) => {
    if (typeof body === "object" && body !== null && "profile" in body) {
      const { profile } = body as { profile: string }
      return profile === "start" ? startProfile() : stopProfile(profile)
    }
    switch (body) {
      case "cpu": {
        const u = process.cpuUsage()
        return u.user + u.system
      }
      case "stats":
        return stats(fibers)
      case "reduced":
        return reducedRss()
      case "exit":
        setTimeout(() => process.exit(0), 10)
        return "bye"
    }
    return undefined
  })
  return peer
}

// Exit with the orchestrator, even if it was killed.
process.on("disconnect", () => process.exit(0))

const idOf = (metadata: grpc.Metadata): string => String(metadata.get("x-id")[0] ?? "")

// ---------------------------------------------------------------- framework
const runFramework = () => {
  let report: (id: string) => void = () => {}
  const cancelHandlers = (
    client: GrpcClient.Client<typeof EchoDefinition> | undefined
  ): ServiceHandlers<typeof EchoDefinition, CallContext.CallContext> => ({
    ...frameworkEcho,
    unaryEcho: (request, ctx) => {
      const id = idOf(ctx.metadata)
      return Effect.gen(function*() {
        if (client === undefined) {
          yield* ctx.sendHeaders(new grpc.Metadata())
          return yield* Effect.never
        }
        const headers = yield* Deferred.make<void>()
        const metadata = new grpc.Metadata()
        metadata.set("x-id", id)
        const downstream = yield* Effect.forkChild(
          client.unaryEcho(request, { metadata, onHeaders: () => Deferred.doneUnsafe(headers, Exit.void) }),
          { startImmediately: true }
        )
        yield* Deferred.await(headers)
        yield* ctx.sendHeaders(new grpc.Metadata())
        return yield* Fiber.join(downstream)
      }).pipe(Effect.onInterrupt(() => Effect.sync(() => report(id))))
    }
  })

  const program = Effect.gen(function*() {
    const server = yield* GrpcServer.GrpcServer
    const context = yield* Effect.context<never>()
    const run = <A>(effect: Effect.Effect<A>) => Effect.runPromiseWith(context)(effect)
    const peer = ipc(() => run(server.activeCalls))
    report = (id) => peer.notify({ fin: id, t: nowMicros() })
    peer.notify({ listening: server.port })
    return yield* Effect.never
  })

  const clientLayer = next === undefined ? undefined : GrpcClient.layerChannel(`127.0.0.1:${next}`)
  const handlersLayer = mode === "echo"
    ? GrpcServer.serve(EchoDefinition, frameworkEcho)
    : clientLayer === undefined
    ? GrpcServer.serve(EchoDefinition, cancelHandlers(undefined))
    : Layer.unwrap(Effect.map(GrpcClient.make(EchoDefinition), (c) => GrpcServer.serve(EchoDefinition, cancelHandlers(c))))
      .pipe(Layer.provide(clientLayer))
  void Effect.runPromise(program.pipe(
    Effect.provide(handlersLayer.pipe(
      Layer.provideMerge(GrpcServer.layer({
        host: "127.0.0.1",
        port: 0,
        gracePeriod: "1 second",
        middleware: process.argv.includes("--tracing") ? [GrpcTracing.server] : [],
        channelz: process.argv.includes("--channelz")
      }))
    ))
  ))
}

// ---------------------------------------------------------------------- raw
const runRaw = () => {
  let report: (id: string) => void = () => {}
  const downstream = next === undefined
    ? undefined
    : new EchoClient(`127.0.0.1:${next}`, grpc.credentials.createInsecure())
  const cancelService: EchoServer = {
    ...rawEcho,
    unaryEcho: (call) => {
      const id = idOf(call.metadata)
      if (downstream === undefined) {
        call.on("cancelled", () => report(id))
        call.sendMetadata(new grpc.Metadata())
        return
      }
      const metadata = new grpc.Metadata()
      metadata.set("x-id", id)
      const down = downstream.unaryEcho(call.request, metadata, () => {})
      down.on("metadata", () => call.sendMetadata(new grpc.Metadata()))
      call.on("cancelled", () => {
        down.cancel()
        report(id)
      })
    }
  }
  const server = new grpc.Server()
  const service = impl === "protoloader"
    ? protoLoaderEcho().service
    : impl === "rawcodec"
    ? toGrpcJs(EchoDefinition)
    : EchoService
  server.addService(service, mode === "echo" ? rawEcho : cancelService)
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error
    const peer = ipc(async () => 0)
    report = (id) => peer.notify({ fin: id, t: nowMicros() })
    peer.notify({ listening: port })
  })
}

// --------------------------------------------------------------------- nice
const runNice = async () => {
  const server = createServer()
  server.add(EchoDefinition, niceEcho)
  const port = await server.listen("127.0.0.1:0")
  const peer = ipc(async () => 0)
  peer.notify({ listening: port })
}

if (impl === "framework") runFramework()
else if (impl === "nice") void runNice()
else runRaw()
