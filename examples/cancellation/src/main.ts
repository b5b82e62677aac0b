/**
 * `pnpm demo`: gRPC's cancellation guide, Client -> Server1 -> Server2, with
 * Effect handlers that contain no cancellation code. Exits 0 only if, in
 * every scene, every fiber along the chain was interrupted and every upstream
 * call was cancelled on the wire.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { runScenes } from "./scenes.js"

const program = Effect.gen(function*() {
  const results = yield* runScenes((line) => console.log(line))
  const failed = results.filter((r) => !r.passed)
  yield* Console.log(
    failed.length === 0
      ? `\nverdict: PASS - in all ${results.length} scenes every handler along the chain was interrupted and every upstream call was cancelled on the wire`
      : `\nverdict: FAIL - ${failed.map((r) => r.name).join(", ")}: ${failed.flatMap((r) => r.missing).join("; ")}`
  )
  if (failed.length > 0) process.exitCode = 1
})

NodeRuntime.runMain(Effect.scoped(program), { disableErrorReporting: false })
