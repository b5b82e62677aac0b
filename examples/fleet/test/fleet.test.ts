import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { run } from "../src/fleet.js"

describe("examples/fleet", () => {
  it.live("spread, failover after a killed backend, and a hedged call whose loser is cancelled", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const checks = yield* run((line) => lines.push(line))
      for (const check of checks) assert.isTrue(check.passed, `${check.name}\n${lines.join("\n")}`)
      assert.isTrue(lines.some((l) => /"hedged" attempt 1 was cancelled by the client/.test(l)))
    }))

  it.live("pnpm fleet prints the verdict and exits 0", () =>
    Effect.gen(function*() {
      const root = fileURLToPath(new URL("../../..", import.meta.url))
      const child = spawn("sh", ["scripts/run.sh", "examples/fleet/src/main.ts"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
      const code = yield* Effect.callback<number | null>((resume) => {
        child.on("exit", (c) => resume(Effect.succeed(c)))
      })
      assert.strictEqual(code, 0, out)
      assert.match(out, /^verdict: PASS$/m)
    }))
})
