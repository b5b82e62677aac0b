/**
 * `pnpm demo`: gRPC's cancellation guide, Client -> Server1 -> Server2, with
 * Effect handlers that contain no cancellation code. Exits 0 only if, in
 * every scene, every fiber along the chain was interrupted and every upstream
 * call was cancelled on the wire.
 *
 * `pnpm demo --trace` also traces every call (GrpcTracing) into an in-memory
 * OpenTelemetry exporter and prints each scene's trace tree.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { runScenes } from "./scenes.js"
import { makeTraceCollector } from "./traceTree.js"

const trace = process.argv.includes("--trace") ? makeTraceCollector() : undefined

const program = Effect.gen(function*() {
  const results = yield* runScenes((line) => console.log(line), trace)
  const failed = results.filter((r) => !r.passed)
  yield* Console.log(
    failed.length === 0
      ? `\nverdict: PASS - in all ${results.length} scenes every handler along the chain was interrupted and every upstream call was cancelled on the wire`
      : `\nverdict: FAIL - ${failed.map((r) => r.name).join(", ")}: ${failed.flatMap((r) => r.missing).join("; ")}`
  )
  if (failed.length > 0) process.exitCode = 1
})

NodeRuntime.runMain(
  trace === undefined ? Effect.scoped(program) : Effect.scoped(program).pipe(Effect.provide(trace.layer)),
  { disableErrorReporting: false }
)
