/**
 * `pnpm --filter @fiber-grpc/bench profile <side> <impl> <kind> [seconds]`:
 * one CPU profile (`node --cpu-prof`) of one side under load, summarised by
 * package (fiber-grpc, effect, grpc-js, node internals, native, GC) and by
 * function. How the streaming overhead in README's "Benchmarks" was found.
 *
 * - `server <framework|protoloader|raw|nice|rawcodec> <unary|serverStreaming|clientStreaming|bidi>`:
 *   the server under h2load (as in `pnpm bench`); with `--after-unary N`,
 *   after N unary calls (a full run measures its streaming rows in servers
 *   that have served the unary rows first, and that history changes them);
 * - `client <framework|protoloader|raw|nice> <kind>`: the client driving a
 *   plain grpc-js server.
 *
 * The profile covers the measured window only (started over IPC after a
 * warm-up); the .cpuprofile file is kept in the printed directory (open it in
 * Chrome DevTools for a flame chart).
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { childEndpoint, connect, type Peer } from "./ipc.js"
import type { Scenario, Task, TimedResult } from "./load.js"

const args = process.argv.slice(2)
const afterUnaryAt = args.indexOf("--after-unary")
const afterUnary = afterUnaryAt >= 0 ? Number(args.splice(afterUnaryAt, 2)[1]) : 0
const [side, impl, kind = "serverStreaming", secondsArg = "5"] = args
const seconds = Number(secondsArg)
const kinds = ["unary", "serverStreaming", "clientStreaming", "bidi"] as const
type Kind = (typeof kinds)[number]
if ((side !== "server" && side !== "client") || impl === undefined || !kinds.includes(kind as Kind)) {
  console.error("usage: profile.ts server|client <impl> unary|serverStreaming|clientStreaming|bidi [seconds] [--after-unary N]")
  process.exit(2)
}
const here = path.dirname(fileURLToPath(import.meta.url))
const tsx = import.meta.resolve("tsx")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fiber-grpc-profile-"))

const start = (script: string, args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, [
    "--expose-gc",
    "--import",
    tsx,
    path.join(here, script),
    ...args
  ], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  let ready: (body: unknown) => void = () => {}
  const readyP = new Promise<unknown>((resolve) => (ready = resolve))
  const peer: Peer = connect(childEndpoint(child), async () => "ok", (body) => ready(body))
  const exited = new Promise((resolve) => child.once("exit", resolve))
  return { peer, ready: readyP, exited }
}

const main = async () => {
  const server = start("serverProcess.ts", ["--impl", side === "server" ? impl : "raw"])
  const profileFile = path.join(dir, `${side}-${impl}-${kind}.cpuprofile`)
  const { listening: port } = (await server.ready) as { listening: number }
  let measured: string
  let ops = NaN
  if (side === "server") {
    const small = { message: "x".repeat(64) }
    const messages = kind === "unary" ? [small] : kind === "serverStreaming" ? [{ message: "1000" }] : Array(1000).fill(small)
    /** A request body of length-prefixed messages, in a file for h2load's `-d`. */
    const bodyFile = (name: string, body: ReadonlyArray<{ message: string }>) => {
      const file = path.join(dir, name)
      fs.writeFileSync(file, Buffer.concat(body.map((m) => {
        const bytes = EchoRequest.encode(m).finish()
        const frame = Buffer.alloc(5 + bytes.length)
        frame.writeUInt32BE(bytes.length, 1)
        frame.set(bytes, 5)
        return frame
      })))
      return file
    }
    const run = (method: string, file: string, c: string, m: string, flag: string, value: string) =>
      execFileSync("h2load", [flag, value, "-c", c, "-m", m, "-t", "1", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", file, `http://127.0.0.1:${port}/grpc.examples.echo.Echo/${method}`], { encoding: "utf8" })
    if (afterUnary > 0) run("UnaryEcho", bodyFile("unary.bin", [small]), "4", "16", "-n", String(afterUnary))
    const file = bodyFile("body.bin", messages)
    const method = { unary: "UnaryEcho", serverStreaming: "ServerStreamingEcho", clientStreaming: "ClientStreamingEcho", bidi: "BidirectionalStreamingEcho" }[kind as Kind]
    const [c, m] = kind === "unary" ? ["4", "16"] : ["2", "2"]
    const h2load = (flag: string, value: string) => run(method, file, c, m, flag, value)
    h2load("-D", "2")
    await server.peer.request({ profile: "start" })
    const cpu0 = await server.peer.request<number>("cpu")
    const out = h2load("-D", String(seconds))
    const cpu1 = await server.peer.request<number>("cpu")
    await server.peer.request({ profile: profileFile })
    const done = Number(/(\d+) succeeded/.exec(out)?.[1] ?? NaN)
    ops = done * (kind === "unary" ? 1 : 1000)
    measured = `server ${impl}, ${kind}: ${ops} ops, ${((cpu1 - cpu0) / ops).toFixed(2)} µs CPU/op`
  } else {
    const load = start("load.ts", ["--client", impl, "--target", String(port)])
    await load.ready
    const scenario: Scenario = kind === "unary"
      ? { kind: "unary", payload: 64, concurrency: 16 }
      : { kind: kind as Exclude<Kind, "unary">, messages: 1000, concurrency: 1 }
    await load.peer.request<TimedResult>({ task: "timed", scenario, warmupMs: 2000, measureMs: 1 } satisfies Task)
    await load.peer.request({ task: "profile", profile: "start" } satisfies Task)
    const r = await load.peer.request<TimedResult>({ task: "timed", scenario, warmupMs: 100, measureMs: seconds * 1000 } satisfies Task)
    await load.peer.request({ task: "profile", profile: profileFile } satisfies Task)
    ops = r.count
    measured = `client ${impl}, ${kind}: ${r.count} ops, ${(r.clientCpuMicros / r.count).toFixed(2)} µs CPU/op`
    void load.peer.request({ task: "exit" } satisfies Task)
    await load.exited
  }
  void server.peer.request("exit")
  await server.exited
  console.log(measured)
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) summarize(path.join(dir, file))
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".heapprofile"))) summarizeHeap(path.join(dir, file), ops)
}

interface Profile {
  readonly nodes: ReadonlyArray<{ readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const groupOf = (functionName: string, url: string) =>
  functionName === "(idle)" ? "(idle)"
  : functionName === "(garbage collector)" ? "GC"
  : functionName === "(program)" ? "native (V8, HTTP/2, libuv)"
  : url.includes("/packages/grpc/src/") ? "fiber-grpc"
  : url.includes("/effect/") || url.includes("platform-node") ? "effect"
  : url.includes("grpc-js") ? "grpc-js"
  : url.includes("nice-grpc") || url.includes("abort-controller") ? "nice-grpc"
  : url.includes("@bufbuild") || url.includes("/packages/protos/") ? "ts-proto + @bufbuild/protobuf"
  : url.includes("protobufjs") || url.includes("proto-loader") ? "protobufjs"
  : url.startsWith("node:") ? "node (JS)"
  : url === "" ? "node (native builtins)"
  : url.includes("/packages/bench/") ? "bench"
  : url.includes("tsx") ? "tsx (loader)"
  : "other"

/** Prints self time by group and the top functions, excluding idle time. */
const summarize = (file: string) => {
  const profile: Profile = JSON.parse(fs.readFileSync(file, "utf8"))
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  const byGroup = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!
    const dt = profile.timeDeltas[i] ?? 0
    const group = groupOf(frame.functionName, frame.url)
    if (group === "(idle)") return
    busy += dt
    byGroup.set(group, (byGroup.get(group) ?? 0) + dt)
    const key = `${group}: ${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt)
  })
  const share = (t: number) => `${(100 * t / busy).toFixed(1).padStart(5)}%`
  console.log(`\n${file}\nbusy ${(busy / 1000).toFixed(0)} ms`)
  for (const [group, t] of [...byGroup].sort((a, b) => b[1] - a[1])) console.log(`${share(t)}  ${group}`)
  console.log("top functions:")
  for (const [key, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${share(t)}  ${key}`)
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}

/** `PROFILE_ALLOC=1`: bytes allocated per op, by group and by allocating function. */
const summarizeHeap = (file: string, ops: number) => {
  const { head } = JSON.parse(fs.readFileSync(file, "utf8")) as { head: HeapNode }
  const byGroup = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  const walk = (node: HeapNode) => {
    const { functionName, url, lineNumber } = node.callFrame
    if (node.selfSize > 0) {
      const group = groupOf(functionName, url)
      total += node.selfSize
      byGroup.set(group, (byGroup.get(group) ?? 0) + node.selfSize)
      const key = `${group}: ${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child)
  }
  walk(head)
  const perOp = (b: number) => `${(b / ops).toFixed(0).padStart(6)} B/op`
  console.log(`\n${file}\nallocated (sampled) ${perOp(total)}`)
  for (const [group, b] of [...byGroup].sort((a, b) => b[1] - a[1])) console.log(`${perOp(b)}  ${group}`)
  console.log("top allocating functions:")
  for (const [key, b] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${perOp(b)}  ${key}`)
}

void main()
