/**
 * `pnpm bench [--quick]`: the framework against what grpc-js users run, in
 * one run: plain grpc-js with @grpc/proto-loader (the baseline every ratio is
 * taken against), plain grpc-js with ts-proto's codecs, and nice-grpc on the
 * same ts-proto definitions. Writes BENCHMARKS.md at the repository root
 * (a `--quick` run only prints).
 *
 * - Server CPU is taken server-bound: h2load (nghttp2, written in C) posts
 *   pre-encoded gRPC requests, so the server process, not the load
 *   generator, is the bottleneck. For the streaming kinds one request carries
 *   (or asks for) 1000 messages.
 * - Client CPU: each client drives the same plain grpc-js server.
 * - Every side's process is warmed up first and serves a generation's
 *   rounds (two in a full run; then fresh processes take over). Each round
 *   runs every side once, fiber-grpc and a second proto-loader side
 *   (`control`, the noise floor) each next to proto-loader, the others
 *   around them in an order that changes from round to round. Ratios are per
 *   round, against the proto-loader side of the same round.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import type { CodecRow } from "./codec.js"
import { childEndpoint, connect, type Peer } from "./ipc.js"
import type { CancelResult, Scenario, SoakResult, Task, TimedResult } from "./load.js"
import type { ServerStats } from "./serverProcess.js"

const quick = process.argv.includes("--quick")
/** `--only server,client,...`: run only these sections (for development; nothing is written). */
const only = (() => {
  const i = process.argv.indexOf("--only")
  return i >= 0 ? new Set(process.argv[i + 1]?.split(",")) : undefined
})()
const runs = (section: "codec" | "server" | "client" | "cancel" | "soak") => only === undefined || only.has(section)
/** Development flags (a run with any of them writes nothing): `--rows a,b` (rows whose name starts so), `--sides framework,...` (besides proto-loader and control), `--rounds N`, `--generations N`, `--window S` (every row's window, the unary rows' too). */
const listArg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1]?.split(",") : undefined
}
const numberArg = (name: string) => {
  const v = listArg(name)?.[0]
  return v === undefined ? undefined : Number(v)
}
const rowFilter = listArg("rows")
const sideFilter = listArg("sides")
const partial = only !== undefined || rowFilter !== undefined || sideFilter !== undefined ||
  numberArg("rounds") !== undefined || numberArg("window") !== undefined || numberArg("generations") !== undefined
const keepRow = (name: string) => rowFilter === undefined || rowFilter.some((prefix) => name.startsWith(prefix))
const keepSide = (side: Side) =>
  side === "protoloader" || side === "control" || sideFilter === undefined || sideFilter.includes(side)
const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../../..")
const tsx = import.meta.resolve("tsx")

const settings = quick
  ? {
    rounds: 2,
    generations: 1,
    windowSeconds: 0.5,
    unaryWindowSeconds: 0.5,
    clientWarmupMs: 200,
    prewarmSeconds: 0.5,
    firstPrewarmSeconds: 0.5,
    clientFirstPrewarmSeconds: 0.5,
    cancels: 100,
    soakCalls: 10_000
  }
  : {
    // Many short windows rather than a few long ones: every ratio is a
    // median over the rounds (see `Ratio`).
    rounds: 12,
    /**
     * Fresh processes every 2 rounds (see `generationRounds`). Past its
     * warm-up a process keeps its speed, and its luck is shared: in the full
     * runs of 2026-11 the median ratio of one generation's three rounds
     * ranged 0.82-1.36 for the same code (server unary), and two
     * proto-loader processes started together were at times fast or slow
     * together, so the control row can look calm in a generation whose
     * baseline was lucky. A ratio's spread falls with the number of
     * independent processes behind it, not with the number of windows;
     * 6 generations rather than 4, with the processes of a generation
     * started (and stopped) in parallel to pay for them.
     */
    generations: 6,
    windowSeconds: 0.75,
    /**
     * The window of the 64 B unary rows (server and client), the rows whose
     * control would not settle: a mark-compact of a proto-loader server
     * costs 50-120 ms of CPU and comes about every 20,000 calls, so a 0.75 s
     * window (about 21,000 calls) held none, one or two of them. In
     * partial runs (server unary 64 B, 6 generations, 12 rounds), the
     * control's per-round log-ratio had an sd of 0.10-0.18 with 0.75 s
     * windows (three runs), 0.05-0.09 with 1.5 s (two) and 0.03-0.08 with
     * 3 s (three); client unary, two runs each: 0.13-0.19 and 0.08-0.09.
     */
    unaryWindowSeconds: 1.5,
    clientWarmupMs: 200,
    prewarmSeconds: 0.5,
    /**
     * The warm-up of a fresh server process on its first row (its later rows
     * get `prewarmSeconds`). After 0.5 s of unary load, a generation's first
     * window of proto-loader cost 1.1-1.8x (median 1.4) its second; after
     * 2 s, 0.9-1.5x (median 1.15). One partial run each (unary 64 B,
     * 6 generations).
     */
    firstPrewarmSeconds: 2,
    /**
     * The same for a fresh load process (client section): in run 13, a
     * generation's first round of client unary cost 1.07-1.42x (mean 1.19)
     * its second on proto-loader after 0.5 s of warm-up. 1 s rather than 2
     * to keep the run near 15 minutes.
     */
    clientFirstPrewarmSeconds: 1,
    cancels: 300,
    soakCalls: 100_000
  }
settings.rounds = numberArg("rounds") ?? settings.rounds
settings.windowSeconds = numberArg("window") ?? settings.windowSeconds
settings.unaryWindowSeconds = numberArg("window") ?? settings.unaryWindowSeconds
/** A row's measured window, in seconds: the longer one for the server's `unary 64 B` row and the client's `unary 64 B c=16`. */
const windowOf = (row: string) => row.startsWith("unary 64 B") ? settings.unaryWindowSeconds : settings.windowSeconds
settings.generations = Math.min(settings.rounds, numberArg("generations") ?? settings.generations)

// --------------------------------------------------------------------- sides
/** The sides of a comparison; `control` is a second proto-loader side. */
type Side = "protoloader" | "control" | "framework" | "raw" | "nice" | "tracing" | "channelz"
const sideLabel: Record<Side, string> = {
  protoloader: "grpc-js + proto-loader",
  control: "grpc-js + proto-loader (control)",
  framework: "fiber-grpc",
  raw: "grpc-js + ts-proto",
  nice: "nice-grpc",
  tracing: "fiber-grpc --tracing",
  channelz: "fiber-grpc --channelz"
}
const implOf = (side: Side) =>
  side === "control" ? "protoloader" : side === "tracing" || side === "channelz" ? "framework" : side
/** Rotated each round and reversed every other round, so no side always runs first or last. */
const orderOf = <A>(sides: ReadonlyArray<A>, round: number): ReadonlyArray<A> => {
  const k = round % sides.length
  const rotated = [...sides.slice(k), ...sides.slice(0, k)]
  return round % 2 === 0 ? rotated : rotated.reverse()
}

/**
 * A round's order in the server and client sections: the headline ratio's
 * two windows (fiber-grpc and proto-loader) and its control's (the control
 * and proto-loader) are next to each other in every round, proto-loader in
 * the middle, with control and fiber-grpc swapping sides from round to round;
 * that block moves from one pair of rounds to the next, and the other sides
 * rotate and reverse around it. In the full runs of 2026-11, the control's
 * per-round ratio spread (sd of its log) was 0.12 with its two windows next
 * to each other and 0.17 with three windows between them (client section;
 * 0.14 and 0.15 on the server).
 */
const roundOrder = (sides: ReadonlyArray<Side>, round: number): ReadonlyArray<Side> => {
  const pair: ReadonlyArray<Side> = round % 2 === 0 ? ["control", "framework"] : ["framework", "control"]
  const block = [pair[0]!, "protoloader" as const, pair[1]!].filter((side) => sides.includes(side))
  const rest = sides.filter((side) => !block.includes(side))
  const k = rest.length === 0 ? 0 : round % rest.length
  const rotated = [...rest.slice(k), ...rest.slice(0, k)]
  const others = Math.floor(round / 2) % 2 === 0 ? rotated : rotated.reverse()
  const at = Math.floor(round / 2) % (others.length + 1)
  return [...others.slice(0, at), ...block, ...others.slice(at)]
}

// ------------------------------------------------------------------ processes
interface Proc {
  readonly child: ChildProcess
  readonly peer: Peer
  readonly ready: Promise<unknown>
}

const start = (
  script: string,
  args: ReadonlyArray<string>,
  handle: (body: unknown) => unknown = () => undefined,
  onEvent: (body: unknown) => void = () => {}
): Proc => {
  const child = spawn(process.execPath, ["--expose-gc", "--import", tsx, path.join(here, script), ...args], {
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  let ready: (v: unknown) => void = () => {}
  const readyP = new Promise((resolve, reject) => {
    ready = resolve
    child.once("exit", (code) => reject(new Error(`${script} ${args.join(" ")} exited with ${code}`)))
  })
  const peer = connect(childEndpoint(child), handle, (body) => {
    if (typeof body === "object" && body !== null && ("listening" in body || "ready" in body)) ready(body)
    else onEvent(body)
  })
  return { child, peer, ready: readyP }
}

const stop = async (proc: Proc) => {
  if (proc.child.exitCode !== null) return
  const exited = new Promise((resolve) => proc.child.once("exit", resolve))
  proc.child.removeAllListeners("exit")
  proc.child.once("exit", () => {})
  void proc.peer.request("exit").catch(() => {})
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))])
  if (proc.child.exitCode === null) proc.child.kill("SIGKILL")
}

type Fin = { readonly fin: string; readonly t: number }
const isFin = (b: unknown): b is Fin => typeof b === "object" && b !== null && "fin" in b

type Server = Proc & { readonly port: number }
const startServer = async (
  impl: string,
  options: { mode?: string; next?: number; tracing?: boolean; channelz?: boolean; onFin?: (f: Fin) => void } = {}
): Promise<Server> => {
  const proc = start(
    "serverProcess.ts",
    [
      "--impl", impl,
      "--mode", options.mode ?? "echo",
      ...(options.next === undefined ? [] : ["--next", String(options.next)]),
      ...(options.tracing ? ["--tracing"] : []),
      ...(options.channelz ? ["--channelz"] : [])
    ],
    undefined,
    (b) => isFin(b) && options.onFin?.(b)
  )
  const { listening } = (await proc.ready) as { listening: number }
  return { ...proc, port: listening }
}

let onMark: () => Promise<void> = async () => {}
const startLoad = async (client: string, port: number) => {
  const proc = start("load.ts", ["--client", client, "--target", String(port)], async (body) => {
    if (body === "mark") await onMark()
    return "ok"
  })
  await proc.ready
  return proc
}

const serverCpu = (server: { peer: Peer }) => server.peer.request<number>("cpu")

// ------------------------------------------------------------------- stats
/** The `q` quantile (0-1) of `xs`, interpolated. */
const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const at = (s.length - 1) * q
  const lo = Math.floor(at)
  return s[lo]! + (s[Math.ceil(at)]! - s[lo]!) * (at - lo)
}
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)
const pct = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "-"

interface Sample {
  /** ops/s: calls/s for unary, messages/s for streams. */
  readonly rate: number
  /** µs of CPU per op, in the process under test. */
  readonly cpu: number
  readonly p50: number
  readonly p99: number
}

/** samples[row][side][round] */
type Samples = Map<string, Partial<Record<Side, Array<Sample>>>>
const add = (samples: Samples, row: string, side: Side, sample: Sample) => {
  let bySide = samples.get(row)
  if (bySide === undefined) samples.set(row, bySide = {})
  ;(bySide[side] ??= []).push(sample)
}

/**
 * A CPU ratio between two sides, from windows paired by round. Every round
 * measures every side once, back to back (about 5 s for all of them), so
 * the two windows of a pair saw the same state of the machine: slow drifts
 * of outside load cancel out of their ratio, which single windows (varying
 * by ±30% on a shared 2-core machine) do not. The ratio is the median over
 * the rounds of side/base, and [low–high] is the interquartile range of those
 * per-round ratios.
 */
interface Ratio {
  readonly value: number
  readonly low: number
  readonly high: number
}
const cpuOf = (samples: Samples, row: string, side: Side) => (samples.get(row)?.[side] ?? []).map((s) => s.cpu)
const ratio = (samples: Samples, row: string, side: Side, base: Side = "protoloader"): Ratio | undefined => {
  const a = cpuOf(samples, row, side)
  const b = cpuOf(samples, row, base)
  // Both lists hold one window per round, in round order; anything else
  // (a side missing windows) gives no ratio rather than a mispaired one.
  if (a.length === 0 || a.length !== b.length) return undefined
  const pairs = a.map((x, i) => x / b[i]!)
  return { value: quantile(pairs, 0.5), low: quantile(pairs, 0.25), high: quantile(pairs, 0.75) }
}
const showRatio = (r: Ratio | undefined) => (r === undefined ? "-" : `${fmt(r.value, 2)} [${fmt(r.low, 2)}–${fmt(r.high, 2)}]`)
/** A side's CPU µs per op, as the tables show it: the lower quartile of its windows (its cost with the least outside load). */
const cpuFigure = (samples: Samples, row: string, side: Side) => quantile(cpuOf(samples, row, side), 0.25)
const med = (samples: Samples, row: string, side: Side, f: (s: Sample) => number) =>
  median((samples.get(row)?.[side] ?? []).map(f))

const startedAt = performance.now()
const log = (line: string) =>
  process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)

// ------------------------------------------------------------------- h2load
const h2loadPath = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v h2load"], { encoding: "utf8" }).trim() || undefined
  } catch {
    return undefined
  }
})()

interface H2Scenario {
  readonly name: string
  readonly method: string
  /** Messages in the request body. */
  readonly body: ReadonlyArray<EchoRequest>
  /** Messages counted per completed request. */
  readonly perRequest: number
  readonly connections: number
  readonly streams: number
}

const streamed = 1000
const small: EchoRequest = { message: "x".repeat(64) }
const serverScenarios: ReadonlyArray<H2Scenario> = [
  { name: "unary 64 B", method: "UnaryEcho", body: [small], perRequest: 1, connections: 4, streams: 16 },
  { name: "unary 4 KiB", method: "UnaryEcho", body: [{ message: "x".repeat(4096) }], perRequest: 1, connections: 4, streams: 16 },
  { name: `server-streaming ${streamed}×64 B`, method: "ServerStreamingEcho", body: [{ message: String(streamed) }], perRequest: streamed, connections: 2, streams: 2 },
  { name: `client-streaming ${streamed}×64 B`, method: "ClientStreamingEcho", body: Array(streamed).fill(small), perRequest: streamed, connections: 2, streams: 2 },
  { name: `bidi ${streamed}×64 B`, method: "BidirectionalStreamingEcho", body: Array(streamed).fill(small), perRequest: streamed, connections: 2, streams: 2 }
]

/** The gRPC request body (length-prefixed messages) h2load posts, in a temp file. */
const bodyFile = (scenario: H2Scenario) => {
  const frames = scenario.body.map((m) => {
    const bytes = EchoRequest.encode(m).finish()
    const frame = Buffer.alloc(5 + bytes.length)
    frame.writeUInt32BE(bytes.length, 1)
    frame.set(bytes, 5)
    return frame
  })
  const file = path.join(os.tmpdir(), `fiber-grpc-bench-${scenario.method}-${scenario.body.length}-${scenario.body[0]!.message.length}.bin`)
  fs.writeFileSync(file, Buffer.concat(frames))
  return file
}

const runH2load = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(h2loadPath!, args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`h2load exited ${code}: ${out}`))))
  })

/** Runs `requests` requests of a scenario; returns the server's CPU µs and the requests that succeeded. */
const h2loadRun = async (server: Server, scenario: H2Scenario, file: string, requests: number) => {
  const args = [
    "-n", String(requests), "-c", String(scenario.connections), "-m", String(scenario.streams), "-t", "1",
    "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", file,
    `http://127.0.0.1:${server.port}/grpc.examples.echo.Echo/${scenario.method}`
  ]
  const cpu0 = await serverCpu(server)
  const t0 = performance.now()
  const out = await runH2load(args)
  const seconds = (performance.now() - t0) / 1000
  const cpu1 = await serverCpu(server)
  const succeeded = Number(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out)?.[1] ?? NaN)
  const meanMatch = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out)
  const mean = meanMatch ? Number(meanMatch[1]) * (meanMatch[2] === "ms" ? 1000 : meanMatch[2] === "s" ? 1e6 : 1) : NaN
  return { cpuMicros: cpu1 - cpu0, succeeded, seconds, mean }
}

// ------------------------------------------------------------ server section
const serverSamples: Samples = new Map()
const tracingSamples: Samples = new Map()
let tracingAvailable = false

/**
 * The rounds of one generation of processes: a section starts fresh
 * processes for each generation, so that one process's luck (its JIT, its
 * heap's growth) cannot bias all of a side's windows.
 */
const generationRounds = (generation: number) => {
  const per = Math.ceil(settings.rounds / settings.generations)
  return Array.from({ length: Math.max(0, Math.min(per, settings.rounds - generation * per)) }, (_, i) => generation * per + i)
}

/**
 * The framework with one option changed, measured on these rows only (next
 * to every other side, in the same rounds): tracing on, and channelz on
 * (grpc-js's default; off in fiber-grpc's).
 */
const probeRows: ReadonlyArray<readonly [Side, ReadonlyArray<string>]> = [
  ["tracing", ["unary 64 B"]],
  ["channelz", ["unary 64 B", `bidi ${streamed}×64 B`]]
]

const compareServers = async () => {
  const sides = (["protoloader", "control", "framework", "raw", "nice"] as Array<Side>).filter(keepSide)
  tracingAvailable = await frameworkHasTracing() && keepSide("tracing")
  const probes = probeRows.filter(([side]) => side === "tracing" ? tracingAvailable : keepSide(side))
  /** Requests per measured run, per scenario, carried from round to round (see below). */
  const sized = new Map<string, number>()
  for (let generation = 0; generation < settings.generations; generation++) {
    const generationSides = [...sides, ...probes.map(([side]) => side)]
    const servers = new Map<Side, Server>(
      await Promise.all(generationSides.map(async (side) =>
        [side, await startServer(implOf(side), { tracing: side === "tracing", channelz: side === "channelz" })] as const
      ))
    )
    for (const [index, scenario] of serverScenarios.filter((s) => keepRow(s.name)).entries()) {
      const file = bodyFile(scenario)
      const prewarmSeconds = index === 0 ? settings.firstPrewarmSeconds : settings.prewarmSeconds
      const windowSeconds = windowOf(scenario.name)
      const scenarioSides: Array<Side> = [...sides, ...probes.filter(([, rows]) => rows.includes(scenario.name)).map(([side]) => side)]
      // Warm every server up (JIT) and size the measured run from the baseline's rate.
      let requests = 0
      for (const side of scenarioSides) {
        const warm = await h2loadRun(servers.get(side)!, scenario, file, scenario.connections * scenario.streams * 4)
        const perSecond = warm.succeeded / warm.seconds
        const warmup = await h2loadRun(servers.get(side)!, scenario, file, Math.max(64, Math.round(perSecond * prewarmSeconds)))
        if (side === "protoloader") requests = Math.max(64, Math.round(warmup.succeeded / warmup.seconds * windowSeconds))
      }
      requests = sized.get(scenario.name) ?? requests
      for (const round of generationRounds(generation)) {
        let baselineSeconds = windowSeconds
        for (const side of roundOrder(scenarioSides, round)) {
          log(`server: ${scenario.name}, round ${round + 1}/${settings.rounds}, ${sideLabel[side]} (${requests} requests)`)
          const r = await h2loadRun(servers.get(side)!, scenario, file, requests)
          const ops = r.succeeded * scenario.perRequest
          const sample = { rate: ops / r.seconds, cpu: r.cpuMicros / ops, p50: r.mean, p99: NaN }
          log(`  ${sample.cpu.toFixed(2)} µs/op, ${r.seconds.toFixed(2)} s`)
          add(serverSamples, scenario.name, side, sample)
          if (side === "protoloader") baselineSeconds = r.seconds
        }
        // A server is still getting faster during its warm-up (JIT), so the
        // size taken from it gave windows shorter than asked for (unary:
        // about 0.4-0.5 s for 0.75). Every side of a round runs the same
        // requests; the next round's count follows the baseline's last
        // window, within a factor of 2 per step.
        const factor = Math.min(2, Math.max(0.5, windowSeconds / baselineSeconds))
        requests = Math.max(64, Math.round(requests * factor))
        sized.set(scenario.name, requests)
      }
    }
    await Promise.all([...servers.values()].map(stop))
  }
  if (tracingAvailable) {
    for (const side of ["framework", "tracing"] as const) {
      for (const s of serverSamples.get("unary 64 B")?.[side] ?? []) add(tracingSamples, "unary 64 B", side, s)
    }
  }
}

/** Whether the framework's bench server has `--tracing` (GrpcTracing.server on every call). */
const frameworkHasTracing = async (): Promise<boolean> =>
  fs.readFileSync(path.join(here, "serverProcess.ts"), "utf8").includes("GrpcTracing.server")

// ------------------------------------------------------------ client section
const clientScenarios: ReadonlyArray<readonly [string, Scenario]> = [
  ["unary 64 B c=16", { kind: "unary", payload: 64, concurrency: 16 }],
  [`server-streaming ${streamed}×64 B`, { kind: "serverStreaming", messages: streamed, concurrency: 1 }],
  [`client-streaming ${streamed}×64 B`, { kind: "clientStreaming", messages: streamed, concurrency: 1 }],
  [`bidi ${streamed}×64 B`, { kind: "bidi", messages: streamed, concurrency: 1 }]
]
const clientSamples: Samples = new Map()

const timedRun = async (load: Proc, scenario: Scenario, warmupMs: number, measureMs: number): Promise<Sample> => {
  onMark = async () => {}
  const r = await load.peer.request<TimedResult>({ task: "timed", scenario, warmupMs, measureMs } satisfies Task)
  return { rate: r.count / r.seconds, cpu: r.clientCpuMicros / r.count, p50: pct(r.latencies, 0.5), p99: pct(r.latencies, 0.99) }
}

const compareClients = async () => {
  const sides = (["protoloader", "control", "framework", "raw", "nice"] as Array<Side>).filter(keepSide)
  // One plain grpc-js server (ts-proto codecs) answers every client.
  const server = await startServer("raw")
  for (let generation = 0; generation < settings.generations; generation++) {
    const loads = new Map<Side, Proc>(
      await Promise.all(sides.map(async (side) => [side, await startLoad(implOf(side), server.port)] as const))
    )
    for (const [index, [row, scenario]] of clientScenarios.filter(([name]) => keepRow(name)).entries()) {
      const prewarmSeconds = index === 0 ? settings.clientFirstPrewarmSeconds : settings.prewarmSeconds
      for (const side of sides) await timedRun(loads.get(side)!, scenario, prewarmSeconds * 1000, 1)
      for (const round of generationRounds(generation)) {
        for (const side of roundOrder(sides, round)) {
          log(`client: ${row}, round ${round + 1}/${settings.rounds}, ${sideLabel[side]}`)
          add(clientSamples, row, side, await timedRun(loads.get(side)!, scenario, settings.clientWarmupMs, windowOf(row) * 1000))
        }
      }
    }
    await Promise.all([...loads.values()].map(stop))
  }
  await stop(server)
}

// -------------------------------------------------------------- codec alone
let codecRows: Array<CodecRow> = []
const measureCodecs = async () => {
  log("codec alone")
  const child = spawn(process.execPath, ["--import", tsx, path.join(here, "codec.ts"), ...(quick ? ["--quick"] : [])], {
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  codecRows = await new Promise<Array<CodecRow>>((resolve, reject) => {
    child.once("message", (rows) => resolve(rows as Array<CodecRow>))
    child.once("exit", (code) => reject(new Error(`codec.ts exited with ${code}`)))
  })
}

// ------------------------------------------------------------ cancellation
type Impl = "framework" | "raw"
const cancelLatencies: Record<Impl, Record<"1 hop" | "3 hops", Array<number>>> = {
  framework: { "1 hop": [], "3 hops": [] },
  raw: { "1 hop": [], "3 hops": [] }
}

/**
 * Each implementation's chain (A → B → C) is started once; rounds alternate
 * between the two chains, each round cancelling calls over one hop (A → C)
 * and over three (A → B → C).
 */
const measureCancellation = async () => {
  const finAtC = new Map<string, number>()
  const chains = new Map<Impl, { readonly a: Proc; readonly b: Server; readonly c: Server }>()
  for (const impl of ["framework", "raw"] as const) {
    const c = await startServer(impl, { mode: "cancel", onFin: (f) => finAtC.set(f.fin, f.t) })
    const b = await startServer(impl, { mode: "cancel", next: c.port })
    const a = await startLoad("raw", c.port)
    for (const port of [c.port, b.port]) {
      await a.peer.request<CancelResult>({ task: "cancel", port, prefix: `warm-${impl}-${port}`, count: 200 } satisfies Task)
    }
    chains.set(impl, { a, b, c })
  }
  const rounds = Math.min(settings.rounds, 3)
  for (let round = 0; round < rounds; round++) {
    for (const impl of orderOf(["framework", "raw"] as const, round)) {
      log(`cancellation: round ${round + 1}/${rounds}, ${impl}`)
      const { a, b, c } = chains.get(impl)!
      for (const [hops, port] of [["1 hop", c.port], ["3 hops", b.port]] as const) {
        const r = await a.peer.request<CancelResult>(
          { task: "cancel", port, prefix: `${impl}-${round}-${hops}`, count: settings.cancels } satisfies Task
        )
        // Wait until C has reported every cancelled call's finalizer (IPC is
        // asynchronous), for at most two seconds; a call still missing then
        // counts as missed.
        const ids = Object.keys(r.cancelled)
        for (let waited = 0; waited < 2000 && ids.some((id) => !finAtC.has(id)); waited += 10) {
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        for (const [id, t] of Object.entries(r.cancelled)) {
          const fin = finAtC.get(id)
          cancelLatencies[impl][hops].push(fin === undefined ? Infinity : fin - t)
        }
      }
    }
  }
  for (const { a, b, c } of chains.values()) {
    await stop(a)
    await stop(b)
    await stop(c)
  }
}

// -------------------------------------------------------------------- soak
interface SoakReport {
  readonly side: Side
  readonly before: ServerStats
  /** After half of the calls. */
  readonly half: ServerStats
  readonly after: ServerStats
  /** RSS after a memory-reducing collection, once the soak is over. */
  readonly reducedRss: number
  readonly result: SoakResult
  readonly seconds: number
}
const soaks: Array<SoakReport> = []

const soak = async (side: Side, calls: number) => {
  log(`soak: ${sideLabel[side]}, ${calls} calls`)
  const server = await startServer(implOf(side))
  const load = await startLoad("raw", server.port)
  const marks: Array<ServerStats> = []
  onMark = async () => {
    marks.push(await server.peer.request<ServerStats>("stats"))
  }
  const t0 = performance.now()
  const result = await load.peer.request<SoakResult>({ task: "soak", warmup: 5000, calls, concurrency: 64 } satisfies Task)
  const seconds = (performance.now() - t0) / 1000
  await stop(load)
  // Let the server see every connection close, then wait (bounded) for idle.
  let after = await server.peer.request<ServerStats>("stats")
  for (let i = 0; i < 20 && after.fibers > 0; i++) after = await server.peer.request<ServerStats>("stats")
  const reducedRss = await server.peer.request<number>("reduced")
  soaks.push({ side, before: marks[0]!, half: marks[1]!, after, reducedRss, result, seconds })
  await stop(server)
}

// ------------------------------------------------------------------ report
interface Target {
  readonly name: string
  /** The ratio and its spread (see `Ratio`). */
  readonly value: string
  /** The control ratio of the same figure, where there is one. */
  readonly control: string
  readonly controlOk: boolean | undefined
  readonly met: boolean
}
const targets: Array<Target> = []
const controlBound = 0.05

const controlOk = (r: Ratio) => Math.abs(r.value - 1) <= controlBound

const ratioTarget = (name: string, samples: Samples, row: string, side: Side, base: Side, bound: number, strict = false) => {
  const r = ratio(samples, row, side, base)
  const control = ratio(samples, row, "control", "protoloader")
  targets.push({
    name,
    value: showRatio(r),
    control: showRatio(control),
    controlOk: control === undefined ? undefined : controlOk(control),
    met: r !== undefined && (strict ? r.value < bound : r.value <= bound)
  })
}

const evaluateTargets = () => {
  const unary = "unary 64 B"
  const streams = serverScenarios.filter((s) => s.perRequest > 1).map((s) => s.name)
  ratioTarget("server CPU per unary call (64 B, h2load), fiber-grpc / proto-loader ≤ 1.05", serverSamples, unary, "framework", "protoloader", 1.05)
  for (const row of streams) {
    ratioTarget(`server CPU per streamed message (${row}), fiber-grpc / proto-loader ≤ 1.05`, serverSamples, row, "framework", "protoloader", 1.05)
  }
  ratioTarget("client CPU per unary call (64 B, c=16), fiber-grpc / proto-loader ≤ 1.10", clientSamples, "unary 64 B c=16", "framework", "protoloader", 1.1)
  for (const [row] of clientScenarios.slice(1)) {
    ratioTarget(`client CPU per streamed message (${row}), fiber-grpc / proto-loader ≤ 1.10`, clientSamples, row, "framework", "protoloader", 1.1)
  }
  for (const s of serverScenarios) {
    ratioTarget(`ahead of nice-grpc: server CPU, ${s.name}, fiber-grpc / nice-grpc < 1`, serverSamples, s.name, "framework", "nice", 1, true)
  }
  for (const [row] of clientScenarios) {
    ratioTarget(`ahead of nice-grpc: client CPU, ${row}, fiber-grpc / nice-grpc < 1`, clientSamples, row, "framework", "nice", 1, true)
  }
  if (tracingAvailable) {
    ratioTarget("tracing on vs off: server CPU per unary call (64 B, h2load) ≤ 1.05", tracingSamples, unary, "tracing", "framework", 1.05)
  }
  for (const hops of ["1 hop", "3 hops"] as const) {
    const r = [...cancelLatencies.raw[hops]].sort((a, b) => a - b)
    const f = [...cancelLatencies.framework[hops]].sort((a, b) => a - b)
    const ratio = pct(f, 0.99) / pct(r, 0.99)
    targets.push({ name: `cancellation p99 ${hops}, fiber-grpc / grpc-js ≤ 1.5`, value: fmt(ratio, 2), control: "-", controlOk: undefined, met: ratio <= 1.5 })
  }
  const fw = soaks.find((s) => s.side === "framework")
  if (fw !== undefined) {
    const heap = fw.after.heapUsed / fw.before.heapUsed - 1
    targets.push({ name: "soak: zero live handler fibers after", value: String(fw.after.fibers), control: "-", controlOk: undefined, met: fw.after.fibers === 0 })
    targets.push({
      name: "soak: no leftover handles (after ≤ before)",
      value: `${fw.before.handles} → ${fw.after.handles}`,
      control: "-",
      controlOk: undefined,
      met: fw.after.handles <= fw.before.handles
    })
    targets.push({ name: "soak: heap back to baseline (within 5%)", value: `${fmt(heap * 100, 1)}%`, control: "-", controlOk: undefined, met: heap <= 0.05 })
  }
}

const render = (elapsed: number): string => {
  const out: Array<string> = []
  const line = (s = "") => out.push(s)
  const cpuTable = (samples: Samples, rows: ReadonlyArray<string>, unit: string, latency: "p50p99" | "mean" | "none") => {
    line(`| scenario | proto-loader ${unit} | fiber-grpc | grpc-js + ts-proto | nice-grpc | fiber-grpc / proto-loader | ts-proto / proto-loader | nice-grpc / proto-loader | fiber-grpc / nice-grpc | control | ops/s proto-loader / fiber-grpc${latency === "none" ? "" : latency === "mean" ? " | mean latency µs proto-loader / fiber-grpc" : " | p50 µs / p99 µs proto-loader → fiber-grpc"} |`)
    line(`| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --:${latency === "none" ? "" : " | --:"} |`)
    for (const row of rows) {
      const cpu = (side: Side) => fmt(cpuFigure(samples, row, side), 2)
      const rate = (side: Side) => fmt(med(samples, row, side, (s) => s.rate))
      const lat = latency === "mean"
        ? ` | ${fmt(med(samples, row, "protoloader", (s) => s.p50))} / ${fmt(med(samples, row, "framework", (s) => s.p50))}`
        : latency === "p50p99" && row.startsWith("unary")
        ? ` | ${fmt(med(samples, row, "protoloader", (s) => s.p50))} / ${fmt(med(samples, row, "protoloader", (s) => s.p99))} → ${fmt(med(samples, row, "framework", (s) => s.p50))} / ${fmt(med(samples, row, "framework", (s) => s.p99))}`
        : latency === "none" ? "" : " | -"
      const control = ratio(samples, row, "control")
      const controlCell = control === undefined ? "-" : `${showRatio(control)}${controlOk(control) ? "" : " **outside ±5%**"}`
      line(`| ${row} | ${cpu("protoloader")} | ${cpu("framework")} | ${cpu("raw")} | ${cpu("nice")} | ${showRatio(ratio(samples, row, "framework"))} | ${showRatio(ratio(samples, row, "raw"))} | ${showRatio(ratio(samples, row, "nice"))} | ${showRatio(ratio(samples, row, "framework", "nice"))} | ${controlCell} | ${rate("protoloader")} / ${rate("framework")}${lat} |`)
    }
  }

  line("### Server CPU, server-bound (h2load as the load generator)")
  line()
  line(`CPU µs per op (per call for unary, per message for streams) of the server process (\`process.cpuUsage()\`, all threads) over a run of h2load requests sized to about ${settings.windowSeconds} s on the proto-loader server (${settings.unaryWindowSeconds} s on the unary 64 B row); the same number of requests for every side. Unary: ${serverScenarios[0]!.connections} connections × ${serverScenarios[0]!.streams} streams. Streams: ${serverScenarios[2]!.connections} connections × ${serverScenarios[2]!.streams} streams; a server-streaming request asks for ${streamed} messages, a client-streaming or bidi request carries ${streamed}. Each side runs ${settings.rounds} windows, one per round. Load from outside the benchmark only ever adds CPU time to a window, so a side's µs/op is the lower quartile of its windows. A ratio pairs the two sides' windows of the same round (measured back to back, so slow drifts of outside load cancel out): it is the median of the per-round ratios, and [low–high] their interquartile range. \`control\` is a second proto-loader server against the first: the noise floor of every ratio in its row.`)
  line()
  cpuTable(serverSamples, serverScenarios.map((s) => s.name), "µs/op", "mean")
  line()
  line("### Client CPU (each client against the same plain grpc-js server)")
  line()
  line(`CPU µs per op of the client process over a ${settings.windowSeconds} s window (${settings.unaryWindowSeconds} s on the unary row; after ${settings.clientWarmupMs} ms of warm-up); unary at concurrency 16, streams one at a time. Same ratios and control as above.`)
  line()
  cpuTable(clientSamples, clientScenarios.map(([r]) => r), "µs/op", "p50p99")
  line()
  line("### Tracing on vs off (server CPU per unary call, h2load)")
  line()
  if (!tracingAvailable) {
    line("Not measured: the bench server has no `--tracing` option in this build.")
  } else {
    const xs = ratio(tracingSamples, "unary 64 B", "tracing", "framework")
    line("| scenario | fiber-grpc µs/call | fiber-grpc --tracing µs/call | tracing / off |")
    line("| --- | --: | --: | --: |")
    line(`| unary 64 B | ${fmt(cpuFigure(tracingSamples, "unary 64 B", "framework"), 2)} | ${fmt(cpuFigure(tracingSamples, "unary 64 B", "tracing"), 2)} | ${showRatio(xs)} |`)
  }
  line()
  line("### channelz on vs off (server CPU, h2load)")
  line()
  line("fiber-grpc turns grpc-js's channelz bookkeeping off unless asked for (`channelz: true`); grpc-js has it on by default, and so do the plain grpc-js, proto-loader and nice-grpc servers above. `fiber-grpc --channelz` is the framework with it on, in the same rounds: the like-for-like comparison with proto-loader.")
  line()
  const channelzRows = serverScenarios.map((s) => s.name).filter((row) => serverSamples.get(row)?.channelz !== undefined)
  if (channelzRows.length === 0) {
    line("Not measured in this run.")
  } else {
    line("| scenario | proto-loader µs/op | fiber-grpc | fiber-grpc --channelz | --channelz / proto-loader | fiber-grpc / --channelz |")
    line("| --- | --: | --: | --: | --: | --: |")
    for (const row of channelzRows) {
      const cpu = (side: Side) => fmt(cpuFigure(serverSamples, row, side), 2)
      line(`| ${row} | ${cpu("protoloader")} | ${cpu("framework")} | ${cpu("channelz")} | ${showRatio(ratio(serverSamples, row, "channelz"))} | ${showRatio(ratio(serverSamples, row, "framework", "channelz"))} |`)
    }
  }
  line()
  line("### The codec alone (ns per message, one process, no I/O)")
  line()
  line("`ts-proto stock` is `encode(message).finish()` / `decode(bytes)` (what the adapter did before, and what nice-grpc does); `adapter` is the serialize/deserialize the framework gives grpc-js's server (its encode lends the reused writer's bytes, which grpc-js copies into its frame at once); `adapter, client` is the client's encode, which copies them into a pooled Buffer, since grpc-js's retry layer keeps request messages; `protobufjs` is @grpc/proto-loader's, including its object conversion (quickstart options). Median [min–max] over rounds, alternating order.")
  line()
  line("| message | op | ts-proto stock | adapter | adapter, client | protobufjs (proto-loader) | adapter / stock | adapter / protobufjs |")
  line("| --- | --- | --: | --: | --: | --: | --: | --: |")
  const cell = (r: CodecRow | undefined) => (r === undefined ? "-" : `${fmt(r.ns)} [${fmt(r.min)}–${fmt(r.max)}]`)
  const messages = [...new Set(codecRows.filter((r) => r.impl === "adapter").map((r) => r.message))]
  for (const message of messages) {
    for (const op of ["encode", "decode"] as const) {
      const get = (impl: string) => codecRows.find((r) => r.message === message && r.op === op && r.impl === impl)
      const [stock, adapter, client, pb] = [get("ts-proto stock"), get("adapter"), get("adapter, client"), get("protobufjs (proto-loader)")]
      line(`| ${message} | ${op} | ${cell(stock)} | ${cell(adapter)} | ${cell(client)} | ${cell(pb)} | ${fmt(adapter!.ns / stock!.ns, 2)} | ${fmt(adapter!.ns / pb!.ns, 2)} |`)
    }
  }
  line()
  const optionRows = codecRows.filter((r) => r.message.startsWith("every field kind"))
  if (optionRows.length > 0) {
    line(`ts-proto options compared, with the adapter's codec: ${optionRows[0]!.message} (packages/grpc/test/codec/everything.proto).`)
    line()
    line("| ts-proto options | encode ns | decode ns |")
    line("| --- | --: | --: |")
    for (const impl of [...new Set(optionRows.map((r) => r.impl))]) {
      const get = (op: string) => optionRows.find((r) => r.impl === impl && r.op === op)
      line(`| ${impl} | ${cell(get("encode"))} | ${cell(get("decode"))} |`)
    }
    line()
  }
  line("### Cancellation latency")
  line()
  line(`Client cancel (as soon as the response headers arrive) to the last hop's handler finalizer having run, CLOCK_MONOTONIC across processes; ${settings.cancels} calls per path per round, ${Math.min(settings.rounds, 3)} rounds alternating between the two chains (each started once and warmed up), all rounds pooled. Raw: plain grpc-js (ts-proto codecs) with a hand-written \`'cancelled'\` listener that cancels the next hop. Framework: \`Effect.onInterrupt\` and GrpcClient's automatic propagation.`)
  line()
  line("| path | grpc-js p50 µs | grpc-js p99 µs | fiber-grpc p50 µs | fiber-grpc p99 µs | p99 fiber-grpc / grpc-js | missed |")
  line("| --- | --: | --: | --: | --: | --: | --: |")
  for (const hops of ["1 hop", "3 hops"] as const) {
    const r = [...cancelLatencies.raw[hops]].sort((a, b) => a - b)
    const f = [...cancelLatencies.framework[hops]].sort((a, b) => a - b)
    const missed = r.filter((x) => !Number.isFinite(x)).length + f.filter((x) => !Number.isFinite(x)).length
    line(`| ${hops === "1 hop" ? "A → C" : "A → B → C"} | ${fmt(pct(r, 0.5))} | ${fmt(pct(r, 0.99))} | ${fmt(pct(f, 0.5))} | ${fmt(pct(f, 0.99))} | ${fmt(pct(f, 0.99) / pct(r, 0.99), 2)} | ${missed} |`)
  }
  line()
  line("### Soak: calls cancelled at random points, all four kinds")
  line()
  line("Each server measured after its warm-up (5,000 calls), half-way through and after the soak, each time after forced GC (`--expose-gc`). Both servers run the same calls. `reduced` is RSS after a last-resort (memory-reducing) collection at the end, which also returns V8's spare young-generation capacity and its pool of freed pages: RSS that a full collection keeps but V8 gives back under memory pressure. `off-heap` is `process.memoryUsage().arrayBuffers` (ArrayBuffers and Buffers). Handles exclude timers; the soak's client connection is open before and closed after. The load generator is a plain grpc-js client in every case.")
  line()
  line("| server | calls | seconds | heap before → after (MiB) | heap Δ | V8 heap committed before → after (MiB) | off-heap before → after (MiB) | RSS before → half-way → after → reduced (MiB) | handles before → after | live handler fibers after | outcomes |")
  line("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |")
  for (const s of soaks) {
    const mib = (b: number) => fmt(b / 1048576, 1)
    line(`| ${sideLabel[s.side]} | ${fmt(s.result.calls)} | ${fmt(s.seconds, 1)} | ${mib(s.before.heapUsed)} → ${mib(s.after.heapUsed)} | ${fmt((s.after.heapUsed / s.before.heapUsed - 1) * 100, 1)}% | ${mib(s.before.heapTotal)} → ${mib(s.after.heapTotal)} | ${mib(s.before.arrayBuffers)} → ${mib(s.after.arrayBuffers)} | ${mib(s.before.rss)} → ${mib(s.half.rss)} → ${mib(s.after.rss)} → ${mib(s.reducedRss)} | ${s.before.handles} → ${s.after.handles} (${s.after.handleTypes.join(", ")}) | ${s.side === "framework" ? s.after.fibers : "n/a"} | ${Object.entries(s.result.byOutcome).sort().map(([k, v]) => `${k} ${v}`).join(", ")} |`)
  }
  line()
  line("### Targets")
  line()
  line("Each CPU target is the median of the per-round ratios of the two sides [their interquartile range], as in the tables above. `control` is the proto-loader vs proto-loader ratio of the same figure; where it is outside ±5% the verdict is within noise and the table says so.")
  line()
  line("| target | measured | control | control within ±5% | verdict |")
  line("| --- | --- | --- | --- | --- |")
  for (const t of targets) {
    line(`| ${t.name} | ${t.value} | ${t.control} | ${t.controlOk === undefined ? "-" : t.controlOk ? "yes" : "**no**"} | ${t.met ? "met" : "**missed**"} |`)
  }
  line()
  line(`Run took ${fmt(elapsed / 60, 1)} min.`)
  return out.join("\n")
}

const main = async () => {
  const t0 = performance.now()
  log(`fiber-grpc bench (${quick ? "quick" : "full"}): ${JSON.stringify(settings)}`)
  if (h2loadPath === undefined) {
    log("h2load is required for the server-bound figures and is not on PATH.")
    log("Install it (Debian/Ubuntu: apt-get install -y nghttp2-client; macOS: brew install nghttp2) and rerun.")
    process.exit(2)
  }
  if (runs("codec")) await measureCodecs()
  if (runs("server")) await compareServers()
  if (runs("client")) await compareClients()
  if (runs("cancel")) await measureCancellation()
  if (runs("soak")) {
    await soak("framework", settings.soakCalls)
    await soak("protoloader", settings.soakCalls)
  }
  evaluateTargets()
  const elapsed = (performance.now() - t0) / 1000
  const table = render(elapsed)
  console.log(table)
  const cpus = os.cpus()
  const machine = `${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()} (${os.arch()}), Node ${process.version}, ${execFileSync(h2loadPath, ["--version"], { encoding: "utf8" }).trim()}`
  const doc = [
    "# Benchmarks",
    "",
    "Generated by `pnpm bench` (packages/bench). Do not edit by hand: rerun the command.",
    "",
    `- Machine: ${machine}`,
    `- Command: \`flock /tmp/bench.lock npx -y pnpm@10.34.9 bench${quick ? " --quick" : ""}\``,
    `- Settings: ${settings.rounds} rounds; ${settings.windowSeconds} s measured per side per round (${settings.unaryWindowSeconds} s on the unary 64 B rows); ${settings.cancels} cancels per path per round; soak ${fmt(settings.soakCalls)} calls on each server.`,
    `- Date: ${new Date().toISOString()}`,
    "",
    `Sides: **fiber-grpc** (this framework); **grpc-js + proto-loader** (plain @grpc/grpc-js with @grpc/proto-loader, as grpc.io's Node quickstart: the baseline of every ratio); **grpc-js + ts-proto** (plain grpc-js with ts-proto's generated grpc-js service); **nice-grpc** (with the same ts-proto definitions as fiber-grpc). Every side runs in its own process, started afresh ${settings.generations === 1 ? "once per section" : `${settings.generations} times per section (each process serves ${Math.ceil(settings.rounds / settings.generations)} rounds), so that one process's luck (its JIT, its heap's growth) cannot bias all of a side's windows`}; each round runs every side once, fiber-grpc and the control each next to proto-loader, the other sides around them in an order that changes from round to round.`,
    "",
    table,
    ""
  ].join("\n")
  // Every window's figures, for a closer look at a run's noise.
  const samplesFile = path.join(os.tmpdir(), "fiber-grpc-bench-samples.json")
  fs.writeFileSync(samplesFile, JSON.stringify({ settings, server: Object.fromEntries(serverSamples), client: Object.fromEntries(clientSamples), cancel: cancelLatencies }))
  log(`every window's samples: ${samplesFile}`)
  // A quick run is a smoke test: only the full run's results are kept.
  if (quick || partial) log("quick or partial run: BENCHMARKS.md left as it is")
  else {
    fs.writeFileSync(path.join(root, "BENCHMARKS.md"), doc)
    log("wrote BENCHMARKS.md")
  }
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
