/**
 * The short version of `pnpm hostile` for CI: the classes the outside suite
 * saw fail, plus handler defects, PING floods and malformed frames, at a
 * fifth of the inputs, against the framework's server in its own process
 * (GrpcServer defaults). Assertions are on outcomes and on the server serving
 * again, not on time.
 */
import * as grpc from "@grpc/grpc-js"
import { EchoClient } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { attacks } from "../src/attacks.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
// Calls may wait four times longer for an outcome than in the full run (a loaded CI machine).
const scale = { factor: 0.2, patience: 4 }

let child: ChildProcess
let port: number
let client: EchoClient

beforeAll(async () => {
  child = spawn("sh", [path.join(root, "scripts/run.sh"), "packages/hostile/src/server.ts", "--impl", "framework"], {
    cwd: root,
    stdio: ["ignore", "pipe", "ignore"]
  })
  port = await new Promise<number>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (d) => {
      out += String(d)
      const m = /listening on (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })
  client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
})

afterAll(() => {
  client?.close()
  child?.kill("SIGKILL")
})

/** The server has not crashed and answers a call (given up to 10 s). */
const servesAgain = async () => {
  expect(child.exitCode).toBeNull()
  const ok = await new Promise<boolean>((resolve) =>
    client.unaryEcho({ message: "probe" }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e) => resolve(e === null)))
  expect(ok).toBe(true)
}

const attack = (name: string) => {
  const found = attacks.find((a) => a.name.startsWith(name))
  if (found === undefined) throw new Error(`no attack ${name}`)
  return found
}

describe("hostile inputs against GrpcServer (short version of pnpm hostile)", () => {
  it("a 2 GiB window that stops reading, then drops: the server serves again", async () => {
    await attack("2 GiB window").run(port, scale)
    await servesAgain()
  })

  it("malformed, negative, over-long and huge grpc-timeout values: every call gets a status", async () => {
    const { inputs, outcomes } = await attack("malformed, negative").run(port, scale)
    expect(outcomes["LOST"]).toBeUndefined()
    const statuses = Object.entries(outcomes).filter(([k]) => k.startsWith("status ")).reduce((n, [, v]) => n + v, 0)
    expect(statuses).toBe(inputs)
    await servesAgain()
  })

  it("rapid RST_STREAM: the server keeps serving", async () => {
    const { outcomes } = await attack("rapid RST_STREAM").run(port, scale)
    expect(outcomes["reset sent"]).toBeGreaterThan(0)
    await servesAgain()
  })

  it("handler defects: INTERNAL for every call, nothing of the error leaks", async () => {
    const { inputs, outcomes } = await attack("handler defects").run(port, scale)
    expect(outcomes).toEqual({ "status 13": inputs })
    await servesAgain()
  })

  it("PING floods get GOAWAY too_many_pings", async () => {
    const { outcomes } = await attack("PING and SETTINGS").run(port, scale)
    expect(outcomes["pings: goaway 11 too_many_pings"]).toBe(10)
    await servesAgain()
  })

  it("lying length prefixes, bad compressed flags, oversized messages: no call is lost", async () => {
    for (const name of ["lying length prefixes", "bad compressed flags", "oversized messages"]) {
      const { outcomes } = await attack(name).run(port, scale)
      expect(outcomes["LOST"], name).toBeUndefined()
    }
    await servesAgain()
  })
})
