/**
 * `pnpm bench [--quick]`: the framework against raw grpc-js, side by side.
 *
 * Every measured process (servers and load generators) is started fresh for
 * each side of each round, on the same Node as this one. Sides run in an
 * alternating order across rounds, and a second raw side ("control") gives
 * the noise floor. Writes BENCHMARKS.md at the repository root.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { childEndpoint, connect, type Peer } from "./ipc.js"
import type { CancelResult, Scenario, SoakResult, Task, TimedResult } from "./load.js"
import type { ServerStats } from "./serverProcess.js"

const quick = process.argv.includes("--quick")
const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../../..")
const tsx = import.meta.resolve("tsx")

const settings = quick
  ? { rounds: 2, prewarmMs: 150, warmupMs: 150, measureMs: 400, cancels: 100, soakCalls: 10_000, rawSoakCalls: 5_000, h2loadSeconds: 1 }
  : { rounds: 4, prewarmMs: 600, warmupMs: 300, measureMs: 800, cancels: 300, soakCalls: 100_000, rawSoakCalls: 20_000, h2loadSeconds: 3 }

type Side = "framework" | "raw" | "control"
const sides: ReadonlyArray<Side> = ["framework", "raw", "control"]
/** Rotated each round and reversed every other round, so no side always runs first or last. */
const orderOf = (round: number): ReadonlyArray<Side> => {
  const rotated = [...sides.slice(round % 3), ...sides.slice(0, round % 3)]
  return round % 2 === 0 ? rotated : rotated.reverse()
}
const implOf = (side: Side) => (side === "framework" ? "framework" : "raw")

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

const startServer = async (impl: string, mode = "echo", next?: number, onFin?: (f: Fin) => void) => {
  const proc = start(
    "serverProcess.ts",
    ["--impl", impl, "--mode", mode, ...(next === undefined ? [] : ["--next", String(next)])],
    undefined,
    (b) => isFin(b) && onFin?.(b)
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

// ------------------------------------------------------------------- stats
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const pct = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
const geomean = (xs: ReadonlyArray<number>) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length)

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "-"
const fmtRatio = (xs: ReadonlyArray<number>) =>
  xs.length === 0
    ? "-"
    : `${fmt(median(xs), 2)} [${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)}]`

interface Sample {
  readonly rate: number
  readonly p50: number
  readonly p99: number
  readonly serverCpu: number
  readonly clientCpu: number
}

/** samples[row][side][round] */
type Samples = Map<string, Record<Side, Array<Sample>>>
const add = (samples: Samples, row: string, side: Side, sample: Sample) => {
  let bySide = samples.get(row)
  if (bySide === undefined) samples.set(row, bySide = { framework: [], raw: [], control: [] })
  bySide[side].push(sample)
}
const ratios = (samples: Samples, row: string, side: Side, f: (s: Sample) => number) => {
  const bySide = samples.get(row)!
  return bySide[side].map((s, i) => f(s) / f(bySide.raw[i]!))
}
const med = (samples: Samples, row: string, side: Side, f: (s: Sample) => number) =>
  median(samples.get(row)![side].map(f))

// ---------------------------------------------------------------- scenarios
const serverScenarios: ReadonlyArray<readonly [string, Scenario]> = [
  ...[64, 4096].flatMap((payload) =>
    [1, 16, 64].map((concurrency) =>
      [`unary ${payload === 64 ? "64 B" : "4 KiB"} c=${concurrency}`, { kind: "unary", payload, concurrency }] as const
    )
  ),
  ["server-streaming 1000×64 B", { kind: "serverStreaming", messages: 1000, concurrency: 1 }],
  ["client-streaming 1000×64 B", { kind: "clientStreaming", messages: 1000, concurrency: 1 }],
  ["bidi 1000×64 B", { kind: "bidi", messages: 1000, concurrency: 1 }]
]
const clientScenarios: ReadonlyArray<readonly [string, Scenario]> = [
  ["unary 64 B c=1", { kind: "unary", payload: 64, concurrency: 1 }],
  ["unary 64 B c=16", { kind: "unary", payload: 64, concurrency: 16 }],
  ["unary 64 B c=64", { kind: "unary", payload: 64, concurrency: 64 }],
  ["server-streaming 1000×64 B", { kind: "serverStreaming", messages: 1000, concurrency: 1 }],
  ["bidi 1000×64 B", { kind: "bidi", messages: 1000, concurrency: 1 }]
]

/**
 * A fresh process runs cold: JIT warm-up on this machine takes seconds. Every
 * scenario is run once, unmeasured, before any is measured.
 */
const prewarm = async (load: Proc, scenarios: ReadonlyArray<readonly [string, Scenario]>) => {
  onMark = async () => {}
  for (const [, scenario] of scenarios) {
    await load.peer.request<TimedResult>({ task: "timed", scenario, warmupMs: settings.prewarmMs, measureMs: 1 } satisfies Task)
  }
}

const runTimed = async (
  server: { peer: Peer },
  load: Proc,
  scenario: Scenario
): Promise<Sample> => {
  const marks: Array<number> = []
  onMark = async () => {
    marks.push(await server.peer.request<number>("cpu"))
  }
  const r = await load.peer.request<TimedResult>({
    task: "timed",
    scenario,
    warmupMs: settings.warmupMs,
    measureMs: settings.measureMs
  } satisfies Task)
  return {
    rate: r.count / r.seconds,
    p50: pct(r.latencies, 0.5),
    p99: pct(r.latencies, 0.99),
    serverCpu: (marks[1]! - marks[0]!) / r.count,
    clientCpu: r.clientCpuMicros / r.count
  }
}

const log = (line: string) => process.stderr.write(`${line}\n`)

// ------------------------------------------------------------------- h2load
const h2loadPath = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v h2load"], { encoding: "utf8" }).trim() || undefined
  } catch {
    return undefined
  }
})()

const h2loadConfigs = [
  { name: "h2load unary 64 B, 4 conns × 16 streams", payload: 64, c: 4, m: 16 },
  { name: "h2load unary 4 KiB, 4 conns × 16 streams", payload: 4096, c: 4, m: 16 }
] as const

const frameFile = (payload: number) => {
  const body = EchoRequest.encode({ message: "x".repeat(payload) }).finish()
  const frame = Buffer.alloc(5 + body.length)
  frame.writeUInt32BE(body.length, 1)
  Buffer.from(body).copy(frame, 5)
  const file = path.join(os.tmpdir(), `fiber-grpc-bench-${payload}.bin`)
  fs.writeFileSync(file, frame)
  return file
}

const runH2load = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(h2loadPath!, args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`h2load exited ${code}: ${out}`))))
  })

const h2loadOnce = async (server: { peer: Peer; port: number }, config: (typeof h2loadConfigs)[number]) => {
  const common = [
    "-c", String(config.c), "-m", String(config.m), "-t", "1",
    "-H", "content-type: application/grpc", "-H", "te: trailers",
    "-d", frameFile(config.payload),
    `http://127.0.0.1:${server.port}/grpc.examples.echo.Echo/UnaryEcho`
  ]
  await runH2load(["-n", "15000", ...common]) // JIT warm-up of the fresh server process
  const cpu0 = await server.peer.request<number>("cpu")
  const out = await runH2load(["-D", String(settings.h2loadSeconds), ...common])
  const cpu1 = await server.peer.request<number>("cpu")
  const rate = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN)
  const succeeded = Number(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out)?.[1] ?? NaN)
  const meanMatch = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out)
  const mean = meanMatch ? Number(meanMatch[1]) * (meanMatch[2] === "ms" ? 1000 : meanMatch[2] === "s" ? 1e6 : 1) : NaN
  return { rate, p50: mean, p99: NaN, serverCpu: (cpu1 - cpu0) / succeeded, clientCpu: NaN }
}

// ------------------------------------------------------------- comparisons
const serverSamples: Samples = new Map()
const clientSamples: Samples = new Map()
const h2Samples: Samples = new Map()

const compareServers = async () => {
  for (let round = 0; round < settings.rounds; round++) {
    for (const side of orderOf(round)) {
      log(`server comparison: round ${round + 1}/${settings.rounds}, ${side}`)
      const server = await startServer(implOf(side))
      const load = await startLoad("raw", server.port)
      await prewarm(load, serverScenarios)
      for (const [row, scenario] of serverScenarios) add(serverSamples, row, side, await runTimed(server, load, scenario))
      await stop(load)
      if (h2loadPath !== undefined) {
        for (const config of h2loadConfigs) add(h2Samples, config.name, side, await h2loadOnce(server, config))
      }
      await stop(server)
    }
  }
}

const compareClients = async () => {
  for (let round = 0; round < settings.rounds; round++) {
    for (const side of orderOf(round)) {
      log(`client comparison: round ${round + 1}/${settings.rounds}, ${side}`)
      const server = await startServer("raw")
      const load = await startLoad(implOf(side), server.port)
      await prewarm(load, clientScenarios)
      for (const [row, scenario] of clientScenarios) add(clientSamples, row, side, await runTimed(server, load, scenario))
      await stop(load)
      await stop(server)
    }
  }
}

// ------------------------------------------------------------ cancellation
type Impl = "framework" | "raw"
const cancelLatencies: Record<Impl, Record<"1 hop" | "3 hops", Array<number>>> = {
  framework: { "1 hop": [], "3 hops": [] },
  raw: { "1 hop": [], "3 hops": [] }
}

const measureCancellation = async () => {
  for (let round = 0; round < settings.rounds; round++) {
    const impls: ReadonlyArray<Impl> = round % 2 === 0 ? ["framework", "raw"] : ["raw", "framework"]
    for (const impl of impls) {
      log(`cancellation: round ${round + 1}/${settings.rounds}, ${impl}`)
      const finAtC = new Map<string, number>()
      const c = await startServer(impl, "cancel", undefined, (f) => finAtC.set(f.fin, f.t))
      const b = await startServer(impl, "cancel", c.port)
      const a = await startLoad("raw", c.port)
      for (const [hops, port] of [["1 hop", c.port], ["3 hops", b.port]] as const) {
        const prefix = `${round}-${hops}`
        const warm = await a.peer.request<CancelResult>({ task: "cancel", port, prefix: `warm-${prefix}`, count: 200 } satisfies Task)
        void warm
        const r = await a.peer.request<CancelResult>({ task: "cancel", port, prefix, count: settings.cancels } satisfies Task)
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
      await stop(a)
      await stop(b)
      await stop(c)
    }
  }
}

// -------------------------------------------------------------------- soak
interface SoakReport {
  readonly impl: Impl
  readonly before: ServerStats
  readonly after: ServerStats
  readonly result: SoakResult
  readonly seconds: number
}
const soaks: Array<SoakReport> = []

const soak = async (impl: Impl, calls: number) => {
  log(`soak: ${impl}, ${calls} calls`)
  const server = await startServer(impl)
  const load = await startLoad("raw", server.port)
  let before: ServerStats | undefined
  onMark = async () => {
    before = await server.peer.request<ServerStats>("stats")
  }
  const t0 = performance.now()
  const result = await load.peer.request<SoakResult>(
    { task: "soak", warmup: 5000, calls, concurrency: 64 } satisfies Task
  )
  const seconds = (performance.now() - t0) / 1000
  await stop(load)
  // Let the server see every connection close, then wait (bounded) for idle.
  let after = await server.peer.request<ServerStats>("stats")
  for (let i = 0; i < 20 && after.fibers > 0; i++) after = await server.peer.request<ServerStats>("stats")
  // The load generator's connection is gone now; compare handles without it.
  soaks.push({ impl, before: before!, after, result, seconds })
  await stop(server)
}

// ------------------------------------------------------------------ report
const targets: Array<{ readonly name: string; readonly value: string; readonly met: boolean }> = []

const render = (elapsed: number): string => {
  const out: Array<string> = []
  const line = (s = "") => out.push(s)
  const cpuRow = (samples: Samples, row: string, f: (s: Sample) => number) =>
    `${fmt(med(samples, row, "raw", f), 1)} | ${fmt(med(samples, row, "framework", f), 1)} | ${
      fmtRatio(ratios(samples, row, "framework", f))
    } | ${fmtRatio(ratios(samples, row, "control", f))}`

  line("### Server: framework vs raw grpc-js (same raw grpc-js load generator)")
  line()
  line("ops/s = calls/s for unary, messages/s for streams. Latency is per unary call, measured by the load generator. Server CPU is the server process's `process.cpuUsage()` over the measured window divided by the calls (or messages) completed in it. Ratios are framework/raw per round, median [min–max over rounds]; `control` is a second raw server against the first (the noise floor).")
  line()
  line("| scenario | raw ops/s | fw ops/s | ops/s fw/raw | ops/s control | p50 µs raw / fw | p99 µs raw / fw | srv CPU µs/op raw | fw | srv CPU fw/raw | srv CPU control |")
  line("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
  for (const [row] of serverScenarios) {
    const unary = row.startsWith("unary")
    line(`| ${row} | ${fmt(med(serverSamples, row, "raw", (s) => s.rate))} | ${fmt(med(serverSamples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(serverSamples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(serverSamples, row, "control", (s) => s.rate))} | ${unary ? `${fmt(med(serverSamples, row, "raw", (s) => s.p50))} / ${fmt(med(serverSamples, row, "framework", (s) => s.p50))}` : "-"} | ${unary ? `${fmt(med(serverSamples, row, "raw", (s) => s.p99))} / ${fmt(med(serverSamples, row, "framework", (s) => s.p99))}` : "-"} | ${cpuRow(serverSamples, row, (s) => s.serverCpu)} |`)
  }
  line()
  line("### Server with h2load as the load generator (the server is the bottleneck)")
  line()
  if (h2loadPath === undefined) {
    line("Skipped: `h2load` is not on PATH (Debian/Ubuntu: `apt-get install -y nghttp2-client`).")
  } else {
    line("| scenario | raw req/s | fw req/s | req/s fw/raw | req/s control | mean latency µs raw / fw | srv CPU µs/call raw | fw | srv CPU fw/raw | srv CPU control |")
    line("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
    for (const config of h2loadConfigs) {
      const row = config.name
      line(`| ${row} | ${fmt(med(h2Samples, row, "raw", (s) => s.rate))} | ${fmt(med(h2Samples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(h2Samples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(h2Samples, row, "control", (s) => s.rate))} | ${fmt(med(h2Samples, row, "raw", (s) => s.p50))} / ${fmt(med(h2Samples, row, "framework", (s) => s.p50))} | ${cpuRow(h2Samples, row, (s) => s.serverCpu)} |`)
    }
  }
  line()
  line("### Client: GrpcClient vs raw grpc-js client (same raw grpc-js server)")
  line()
  line("| scenario | raw ops/s | fw ops/s | ops/s fw/raw | ops/s control | p50 µs raw / fw | p99 µs raw / fw | client CPU µs/op raw | fw | client CPU fw/raw | client CPU control |")
  line("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
  for (const [row] of clientScenarios) {
    const unary = row.startsWith("unary")
    line(`| ${row} | ${fmt(med(clientSamples, row, "raw", (s) => s.rate))} | ${fmt(med(clientSamples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(clientSamples, row, "framework", (s) => s.rate))} | ${fmtRatio(ratios(clientSamples, row, "control", (s) => s.rate))} | ${unary ? `${fmt(med(clientSamples, row, "raw", (s) => s.p50))} / ${fmt(med(clientSamples, row, "framework", (s) => s.p50))}` : "-"} | ${unary ? `${fmt(med(clientSamples, row, "raw", (s) => s.p99))} / ${fmt(med(clientSamples, row, "framework", (s) => s.p99))}` : "-"} | ${cpuRow(clientSamples, row, (s) => s.clientCpu)} |`)
  }
  line()
  line("### Cancellation latency")
  line()
  line(`Client cancel (as soon as the response headers arrive) to the last hop's handler finalizer having run, CLOCK_MONOTONIC across processes; ${settings.cancels} calls per path per round, all rounds pooled. Raw: a hand-written \`'cancelled'\` listener (that cancels the next hop). Framework: \`Effect.onInterrupt\` and GrpcClient's automatic propagation.`)
  line()
  line("| path | raw p50 µs | raw p99 µs | fw p50 µs | fw p99 µs | p99 fw/raw | missed |")
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
  line("Server measured after its warm-up (5,000 calls) and again after the soak, each time after forced GC (`--expose-gc`). Handles exclude timers; the soak's client connection is open before and closed after.")
  line()
  line("| server | calls | seconds | heap before → after (MiB) | heap Δ | RSS before → after (MiB) | handles before → after | live handler fibers after | outcomes |")
  line("| --- | --: | --: | --: | --: | --: | --: | --: | --- |")
  for (const s of soaks) {
    const mib = (b: number) => fmt(b / 1048576, 1)
    line(`| ${s.impl} | ${fmt(s.result.calls)} | ${fmt(s.seconds, 1)} | ${mib(s.before.heapUsed)} → ${mib(s.after.heapUsed)} | ${fmt((s.after.heapUsed / s.before.heapUsed - 1) * 100, 1)}% | ${mib(s.before.rss)} → ${mib(s.after.rss)} | ${s.before.handles} → ${s.after.handles} (${s.after.handleTypes.join(", ")}) | ${s.impl === "framework" ? s.after.fibers : "n/a"} | ${Object.entries(s.result.byOutcome).sort().map(([k, v]) => `${k} ${v}`).join(", ")} |`)
  }
  line()
  line("### Targets")
  line()
  line("| target | measured | met |")
  line("| --- | --- | --- |")
  for (const t of targets) line(`| ${t.name} | ${t.value} | ${t.met ? "met" : "**missed**"} |`)
  line()
  line(`Run took ${fmt(elapsed / 60, 1)} min.`)
  return out.join("\n")
}

const evaluateTargets = () => {
  const unaryRows = serverScenarios.filter(([r]) => r.startsWith("unary")).map(([r]) => r)
  const streamRows = serverScenarios.filter(([r]) => !r.startsWith("unary")).map(([r]) => r)
  const rowRatio = (samples: Samples, row: string, f: (s: Sample) => number) => median(ratios(samples, row, "framework", f))
  const srvUnary = geomean(unaryRows.map((r) => rowRatio(serverSamples, r, (s) => s.serverCpu)))
  const srvUnaryCtrl = geomean(unaryRows.map((r) => median(ratios(serverSamples, r, "control", (s) => s.serverCpu))))
  targets.push({
    name: "server CPU per unary call, fw/raw ≤ 1.05 (geomean of the 6 unary rows)",
    value: `${fmt(srvUnary, 3)} (control ${fmt(srvUnaryCtrl, 3)})`,
    met: srvUnary <= 1.05
  })
  if (h2loadPath !== undefined) {
    const h2 = geomean(h2loadConfigs.map((c) => rowRatio(h2Samples, c.name, (s) => s.serverCpu)))
    targets.push({ name: "server CPU per unary call under h2load, fw/raw ≤ 1.05 (geomean)", value: fmt(h2, 3), met: h2 <= 1.05 })
  }
  const srvStream = geomean(streamRows.map((r) => rowRatio(serverSamples, r, (s) => s.serverCpu)))
  targets.push({
    name: "server CPU per streamed message, fw/raw ≤ 1.10 (geomean of the 3 stream rows)",
    value: fmt(srvStream, 3),
    met: srvStream <= 1.1
  })
  const clientUnary = geomean(
    clientScenarios.filter(([r]) => r.startsWith("unary")).map(([r]) => rowRatio(clientSamples, r, (s) => s.clientCpu))
  )
  targets.push({
    name: "client CPU per unary call, fw/raw ≤ 1.10 (geomean of the 3 unary rows)",
    value: fmt(clientUnary, 3),
    met: clientUnary <= 1.1
  })
  for (const hops of ["1 hop", "3 hops"] as const) {
    const r = [...cancelLatencies.raw[hops]].sort((a, b) => a - b)
    const f = [...cancelLatencies.framework[hops]].sort((a, b) => a - b)
    const ratio = pct(f, 0.99) / pct(r, 0.99)
    targets.push({ name: `cancellation p99 ${hops}, fw/raw ≤ 1.5`, value: fmt(ratio, 2), met: ratio <= 1.5 })
  }
  const fw = soaks.find((s) => s.impl === "framework")
  if (fw !== undefined) {
    const heap = fw.after.heapUsed / fw.before.heapUsed - 1
    targets.push({ name: "soak: zero live handler fibers after", value: String(fw.after.fibers), met: fw.after.fibers === 0 })
    targets.push({
      name: "soak: no leftover handles (after ≤ before)",
      value: `${fw.before.handles} → ${fw.after.handles}`,
      met: fw.after.handles <= fw.before.handles
    })
    targets.push({ name: "soak: heap back to baseline within 5%", value: `${fmt(heap * 100, 1)}%`, met: heap <= 0.05 })
  }
}

const main = async () => {
  const t0 = performance.now()
  log(`fiber-grpc bench (${quick ? "quick" : "full"}): ${JSON.stringify(settings)}`)
  if (h2loadPath === undefined) log("h2load not found on PATH: skipping the h2load section (apt-get install -y nghttp2-client)")
  await compareServers()
  await compareClients()
  await measureCancellation()
  await soak("framework", settings.soakCalls)
  await soak("raw", settings.rawSoakCalls)
  evaluateTargets()
  const elapsed = (performance.now() - t0) / 1000
  const table = render(elapsed)
  console.log(table)
  const cpus = os.cpus()
  const machine = `${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()} (${os.arch()}), Node ${process.version}${h2loadPath === undefined ? "" : `, h2load ${execFileSync(h2loadPath, ["--version"], { encoding: "utf8" }).trim()}`}`
  const doc = [
    "# Benchmarks",
    "",
    "Generated by `pnpm bench" + (quick ? " --quick" : "") + "` (packages/bench). Do not edit by hand: rerun the command.",
    "",
    `- Machine: ${machine}`,
    `- Command: \`npx -y pnpm@10.34.9 bench${quick ? " --quick" : ""}\``,
    `- Settings: ${settings.rounds} rounds; per scenario ${settings.warmupMs} ms warm-up and ${settings.measureMs} ms measured; ${settings.cancels} cancels per path per round; soak ${fmt(settings.soakCalls)} calls (framework) and ${fmt(settings.rawSoakCalls)} (raw, for reference); h2load ${settings.h2loadSeconds} s per run.`,
    `- Date: ${new Date().toISOString()}`,
    "",
    "Each side's server and load generator are fresh processes for every round; sides run in rotating, alternating order. The load generator is a raw grpc-js client for every server, and the server is a raw grpc-js server for every client. On a 2-core machine the load generator saturates first, so CPU per call is the overhead figure; the h2load section makes the server the bottleneck.",
    "",
    table,
    ""
  ].join("\n")
  // A quick run is a smoke test: only the full run's results are kept.
  if (quick) log("quick run: BENCHMARKS.md left as it is")
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
