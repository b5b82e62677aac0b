/**
 * `pnpm fleet`: three Echo backends, a round-robin client that retries
 * UNAVAILABLE, one backend killed under load, and a hedged call whose losing
 * attempt is cancelled on the wire. Exits 0 only if every check passed.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { run } from "./fleet.js"

const program = Effect.gen(function*() {
  const checks = yield* run((line) => console.log(line))
  for (const check of checks) yield* Console.log(`${check.passed ? "ok" : "FAILED"} - ${check.name}`)
  const failed = checks.filter((c) => !c.passed)
  yield* Console.log(failed.length === 0 ? "\nverdict: PASS" : `\nverdict: FAIL - ${failed.map((c) => c.name).join("; ")}`)
  if (failed.length > 0) process.exitCode = 1
})

NodeRuntime.runMain(Effect.scoped(program))
