/**
 * The load generator, in its own process. The same code drives every server;
 * `--client raw|framework` picks the client under test (raw grpc-js, or
 * GrpcClient on top of the same grpc-js).
 *
 *   load.ts --client raw|framework --target <port>
 *
 * The orchestrator sends one task at a time over IPC. A timed task warms up,
 * asks the orchestrator for a `mark` (which snapshots the server's CPU), runs
 * the measured window, marks again and replies with what it counted, its
 * latencies and its own CPU time.
 */
import { GrpcClient } from "@fiber-grpc/grpc"
import * as grpc from "@grpc/grpc-js"
import { EchoClient, EchoDefinition, type EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect, Scope, Stream } from "effect"
import { connect, nowMicros, parentEndpoint, type Peer } from "./ipc.js"

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

const requestOf = (payload: number): EchoRequest => ({ message: "x".repeat(payload) })
const small: EchoRequest = requestOf(64)

// ----------------------------------------------------------- raw grpc-js client
const raw = new EchoClient(target, grpc.credentials.createInsecure(), { "grpc.per_rpc_retry_buffer_size": 64 * 1024 })

const rawOnce = (scenario: Scenario, request: EchoRequest): Promise<void> =>
  new Promise<void>((resolve) => {
    switch (scenario.kind) {
      case "unary": {
        const t = performance.now() * 1000
        raw.unaryEcho(request, () => {
          record(1, t)
          resolve()
        })
        return
      }
      case "serverStreaming": {
        const call = raw.serverStreamingEcho({ message: String(scenario.messages) })
        let n = 0
        call.on("data", () => n++)
        call.on("error", () => {})
        call.on("end", () => {
          record(n)
          resolve()
        })
        return
      }
      case "clientStreaming":
      case "bidi": {
        const call = scenario.kind === "bidi"
          ? raw.bidirectionalStreamingEcho()
          : raw.clientStreamingEcho(() => {
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
          let n = 0
          call.on("data", () => n++)
          call.on("end", () => {
            record(n)
            resolve()
          })
        }
        pump()
        return
      }
    }
  })

const rawWorker = async (scenario: Scenario) => {
  const request = scenario.kind === "unary" ? requestOf(scenario.payload) : small
  while (phase !== "stop") await rawOnce(scenario, request)
}

// ---------------------------------------------------------- framework client
const channel = clientKind === "framework" ? makeFrameworkClient() : undefined

function makeFrameworkClient() {
  // The channel lives as long as this process: its Scope is never closed.
  const channel = Effect.runSync(GrpcClient.makeChannel(target).pipe(Effect.provideService(Scope.Scope, Scope.makeUnsafe())))
  return GrpcClient.makeWith(channel, EchoDefinition)
}

const frameworkWorker = (scenario: Scenario): Effect.Effect<void, unknown> => {
  const client = channel!
  const request = scenario.kind === "unary" ? requestOf(scenario.payload) : small
  const requests = scenario.kind === "unary" || scenario.kind === "serverStreaming"
    ? Stream.empty
    : Stream.map(Stream.range(1, scenario.messages), () => small)
  const once: Effect.Effect<void, unknown> = scenario.kind === "unary"
    ? Effect.suspend(() => {
      const t = performance.now() * 1000
      return Effect.map(client.unaryEcho(request), () => record(1, t))
    })
    : scenario.kind === "serverStreaming"
    ? Effect.map(
      Stream.runFold(client.serverStreamingEcho({ message: String(scenario.messages) }), () => 0, (n) => n + 1),
      (n) => record(n)
    )
    : scenario.kind === "clientStreaming"
    ? Effect.map(client.clientStreamingEcho(requests), () => record(scenario.messages))
    : Effect.map(Stream.runFold(client.bidirectionalStreamingEcho(requests), () => 0, (n) => n + 1), (n) => record(n))
  return Effect.whileLoop({ while: () => phase !== "stop", body: () => once, step: () => {} })
}

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
  for (let i = 0; i < task.scenario.concurrency; i++) {
    workers.push(
      clientKind === "framework" ? Effect.runPromise(frameworkWorker(task.scenario)) : rawWorker(task.scenario)
    )
  }
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
  await run(0, task.calls)
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
    case "exit":
      setTimeout(() => process.exit(0), 10)
      return "bye"
  }
})
peer.notify({ ready: true })
