/**
 * The load generator, in its own process. The same code drives every server;
 * `--client` picks the client under test: GrpcClient (`framework`), plain
 * grpc-js with ts-proto's codecs (`raw`) or with @grpc/proto-loader's
 * (`protoloader`), or nice-grpc on the same ts-proto definitions (`nice`).
 *
 *   load.ts --client framework|raw|protoloader|nice --target <port>
 *
 * The orchestrator sends one task at a time over IPC. A timed task warms up,
 * asks the orchestrator for a `mark`, runs the measured window, marks again
 * and replies with what it counted, its latencies and its own CPU time.
 * Streams count each message as it is received (server-streaming, bidi) or
 * each call's messages when it completes (client-streaming). GrpcClient's
 * response Streams are consumed chunk by chunk (`Stream.runForEachArray`),
 * the way an Effect Stream is read for throughput; nice-grpc's with
 * `for await`, its own idiom.
 */
import { GrpcClient } from "@fiber-grpc/grpc"
import * as grpc from "@grpc/grpc-js"
import { EchoClient, EchoDefinition, type EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect, Scope, Stream } from "effect"
import { createChannel, createClient } from "nice-grpc"
import { protoLoaderEcho } from "./echo.js"
import { connect, nowMicros, parentEndpoint, type Peer } from "./ipc.js"
import { startProfile, stopProfile } from "./profiler.js"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const clientKind = arg("client") ?? "raw"
const target = `127.0.0.1:${arg("target")}`

export type Scenario =
  | { readonly kind: "unary"; readonly payload: number; readonly concurrency: number }
  | { readonly kind: "serverStreaming"; readonly messages: number; readonly concurrency: number }
  | { readonly kind: "clientStreaming"; readonly messages: number; readonly concurrency: number }
  | { readonly kind: "bidi"; readonly messages: number; readonly concurrency: number }

export type Task =
  | { readonly task: "timed"; readonly scenario: Scenario; readonly warmupMs: number; readonly measureMs: number }
  | { readonly task: "cancel"; readonly port: number; readonly prefix: string; readonly count: number }
  | { readonly task: "soak"; readonly warmup: number; readonly calls: number; readonly concurrency: number }
  | { readonly task: "profile"; readonly profile: "start" | string }
  | { readonly task: "exit" }

export interface TimedResult {
  readonly count: number
  readonly seconds: number
  readonly clientCpuMicros: number
  /** Per-call latencies in µs (unary only), sorted. */
  readonly latencies: ReadonlyArray<number>
}

export interface CancelResult {
  /** id → CLOCK_MONOTONIC µs when the client called cancel(). */
  readonly cancelled: Record<string, number>
}

export interface SoakResult {
  readonly calls: number
  readonly byOutcome: Record<string, number>
}

// Exit with the orchestrator, even if it was killed.
process.on("disconnect", () => process.exit(0))

type Phase = "warmup" | "measure" | "stop"
let phase: Phase = "warmup"
let counted = 0
let latencies: Array<number> = []
const record = (n: number, startedAt?: number) => {
  if (phase !== "measure") return
  counted += n
  if (startedAt !== undefined) latencies.push(performance.now() * 1000 - startedAt)
}
const recordOne = () => {
  if (phase === "measure") counted++
}

const requestOf = (payload: number): EchoRequest => ({ message: "x".repeat(payload) })
const small: EchoRequest = requestOf(64)
const requestFor = (scenario: Scenario): EchoRequest =>
  scenario.kind === "unary" ? requestOf(scenario.payload) : scenario.kind === "serverStreaming"
  ? { message: String(scenario.messages) }
  : small

const channelOptions = { "grpc.per_rpc_retry_buffer_size": 64 * 1024 }

// ----------------------------------------------- raw grpc-js (either codec)
/** The raw client used by the soak and the cancellation tasks, and by `--client raw`. */
const raw = new EchoClient(target, grpc.credentials.createInsecure(), channelOptions)

const rawOnce = (client: EchoClient, scenario: Scenario, request: EchoRequest): Promise<void> =>
  new Promise<void>((resolve) => {
    switch (scenario.kind) {
      case "unary": {
        const t = performance.now() * 1000
        client.unaryEcho(request, () => {
          record(1, t)
          resolve()
        })
        return
      }
      case "serverStreaming": {
        const call = client.serverStreamingEcho(request)
        call.on("data", recordOne)
        call.on("error", () => {})
        call.on("end", () => resolve())
        return
      }
      case "clientStreaming":
      case "bidi": {
        const call = scenario.kind === "bidi"
          ? client.bidirectionalStreamingEcho()
          : client.clientStreamingEcho(() => {
            record(scenario.messages)
            resolve()
          })
        let sent = 0
        const pump = () => {
          while (sent < scenario.messages) {
            sent++
            if (!call.write(small)) return void call.once("drain", pump)
          }
          call.end()
        }
        call.on("error", () => {})
        if (scenario.kind === "bidi") {
          call.on("data", recordOne)
          call.on("end", () => resolve())
        }
        pump()
        return
      }
    }
  })

const rawWorker = (client: EchoClient) => async (scenario: Scenario) => {
  const request = requestFor(scenario)
  while (phase !== "stop") await rawOnce(client, scenario, request)
}

// ---------------------------------------------------------------- nice-grpc
const niceWorker = () => {
  const client = createClient(EchoDefinition, createChannel(target, grpc.credentials.createInsecure(), channelOptions))
  async function* requests(n: number) {
    for (let i = 0; i < n; i++) yield small
  }
  return async (scenario: Scenario) => {
    const request = requestFor(scenario)
    while (phase !== "stop") {
      switch (scenario.kind) {
        case "unary": {
          const t = performance.now() * 1000
          await client.unaryEcho(request)
          record(1, t)
          break
        }
        case "serverStreaming":
          for await (const _ of client.serverStreamingEcho(request)) recordOne()
          break
        case "clientStreaming":
          await client.clientStreamingEcho(requests(scenario.messages))
          record(scenario.messages)
          break
        case "bidi":
          for await (const _ of client.bidirectionalStreamingEcho(requests(scenario.messages))) recordOne()
          break
      }
    }
  }
}

// ---------------------------------------------------------- framework client
const frameworkWorker = () => {
  // The channel lives as long as this process: its Scope is never closed.
  const channel = Effect.runSync(
    GrpcClient.makeChannel(target).pipe(Effect.provideService(Scope.Scope, Scope.makeUnsafe()))
  )
  const client = GrpcClient.makeWith(channel, EchoDefinition)
  return (scenario: Scenario): Promise<void> => {
    const request = requestFor(scenario)
    const requests = scenario.kind === "clientStreaming" || scenario.kind === "bidi"
      ? Stream.map(Stream.range(1, scenario.messages), () => small)
      : Stream.empty
    const once: Effect.Effect<void, unknown> = scenario.kind === "unary"
      ? Effect.suspend(() => {
        const t = performance.now() * 1000
        return Effect.map(client.unaryEcho(request), () => record(1, t))
      })
      : scenario.kind === "serverStreaming"
      ? Stream.runForEachArray(client.serverStreamingEcho(request), (chunk) => Effect.sync(() => record(chunk.length)))
      : scenario.kind === "clientStreaming"
      ? Effect.map(client.clientStreamingEcho(requests), () => record(scenario.messages))
      : Stream.runForEachArray(client.bidirectionalStreamingEcho(requests), (chunk) => Effect.sync(() => record(chunk.length)))
    return Effect.runPromise(Effect.whileLoop({ while: () => phase !== "stop", body: () => once, step: () => {} }))
  }
}

const worker: (scenario: Scenario) => Promise<void> = clientKind === "framework"
  ? frameworkWorker()
  : clientKind === "nice"
  ? niceWorker()
  : clientKind === "protoloader"
  ? rawWorker(new (protoLoaderEcho())(target, grpc.credentials.createInsecure(), channelOptions))
  : rawWorker(raw)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const cpu = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

const timed = async (peer: Peer, task: Extract<Task, { task: "timed" }>): Promise<TimedResult> => {
  phase = "warmup"
  counted = 0
  latencies = []
  const workers: Array<Promise<unknown>> = []
  for (let i = 0; i < task.scenario.concurrency; i++) workers.push(worker(task.scenario))
  await sleep(task.warmupMs)
  await peer.request("mark")
  const cpu0 = cpu()
  const t0 = performance.now()
  phase = "measure"
  await sleep(task.measureMs)
  const seconds = (performance.now() - t0) / 1000
  const clientCpuMicros = cpu() - cpu0
  const count = counted
  phase = "stop"
  await peer.request("mark")
  await Promise.all(workers)
  return { count, seconds, clientCpuMicros, latencies: latencies.sort((a, b) => a - b) }
}

/** Calls UnaryEcho on a `cancel`-mode server; cancels each call as soon as its headers arrive. */
const cancelTask = async (task: Extract<Task, { task: "cancel" }>): Promise<CancelResult> => {
  const cancelled: Record<string, number> = {}
  const client = new EchoClient(`127.0.0.1:${task.port}`, grpc.credentials.createInsecure())
  for (let i = 0; i < task.count; i++) {
    const id = `${task.prefix}-${i}`
    await new Promise<void>((resolve) => {
      const metadata = new grpc.Metadata()
      metadata.set("x-id", id)
      const call = client.unaryEcho(small, metadata, () => {})
      call.on("metadata", () => {
        cancelled[id] = nowMicros()
        call.cancel()
      })
      call.on("status", () => resolve())
    })
    await sleep(2)
  }
  client.close()
  return { cancelled }
}

/**
 * Calls of all four kinds, each cancelled at a random point: at once, on the
 * next turn of the event loop, after a random delay of up to 3 ms, or never.
 */
const soakTask = async (task: Extract<Task, { task: "soak" }>, peer: Peer): Promise<SoakResult> => {
  const byOutcome: Record<string, number> = {}
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const kind = i % 4
      const call = kind === 0
        ? raw.unaryEcho(small, () => {})
        : kind === 1
        ? raw.serverStreamingEcho({ message: String(1 + Math.floor(Math.random() * 400)) })
        : kind === 2
        ? raw.clientStreamingEcho(() => {})
        : raw.bidirectionalStreamingEcho()
      call.on("error", () => {})
      call.on("data", () => {})
      call.on("status", (s: grpc.StatusObject) => {
        const key = `${["unary", "server", "client", "bidi"][kind]}:${grpc.status[s.code]}`
        byOutcome[key] = (byOutcome[key] ?? 0) + 1
        resolve()
      })
      let ended = false
      const end = () => {
        if (ended) return
        ended = true
        ;(call as grpc.ClientWritableStream<EchoRequest>).end()
      }
      if (kind >= 2) {
        const writable = call as grpc.ClientWritableStream<EchoRequest>
        const count = Math.floor(Math.random() * 40)
        for (let j = 0; j < count; j++) writable.write(small)
        if (Math.random() < 0.25) end()
      }
      const r = Math.random()
      if (r < 0.2) call.cancel()
      else if (r < 0.4) setImmediate(() => call.cancel())
      else if (r < 0.9) setTimeout(() => call.cancel(), Math.random() * 3)
      else if (kind >= 2) end()
    })
  const run = async (from: number, to: number) => {
    let next = from
    const worker = async () => {
      while (next < to) await one(next++)
    }
    await Promise.all(Array.from({ length: task.concurrency }, worker))
  }
  await run(0, task.warmup)
  await peer.request("mark")
  for (const k of Object.keys(byOutcome)) delete byOutcome[k]
  // Halfway, a second mark: the orchestrator snapshots the server's memory,
  // to tell growth that levels off from growth that keeps going.
  await run(0, Math.floor(task.calls / 2))
  await peer.request("mark")
  await run(Math.floor(task.calls / 2), task.calls)
  return { calls: task.calls, byOutcome }
}

const peer: Peer = connect(parentEndpoint(), (body) => {
  const task = body as Task
  switch (task.task) {
    case "timed":
      return timed(peer, task)
    case "cancel":
      return cancelTask(task)
    case "soak":
      return soakTask(task, peer)
    case "profile":
      return task.profile === "start" ? startProfile() : stopProfile(task.profile)
    case "exit":
      setTimeout(() => process.exit(0), 10)
      return "bye"
  }
})
peer.notify({ ready: true })
