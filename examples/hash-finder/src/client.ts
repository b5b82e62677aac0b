/**
 * `pnpm hash-finder:client --target <host:port> --name <text> [--stream]
 *    [--ideal-distance <n>] [--interesting-distance <n>]`
 *
 * Ctrl+C interrupts the main fiber, which cancels the call running in it; the
 * server's search stops (it sees the cancel, or the closed connection when
 * the process exits first).
 */
import { GrpcClient } from "@fiber-grpc/grpc"
import { HashFinderDefinition } from "@fiber-grpc/protos/hash_name/hash_name"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Stream } from "effect"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "127.0.0.1:50051" },
    name: { type: "string" },
    stream: { type: "boolean", default: false },
    "ideal-distance": { type: "string", default: "0" },
    "interesting-distance": { type: "string", default: "5" }
  }
})
if (values.name === undefined) {
  console.error("usage: pnpm hash-finder:client --target <host:port> --name <text> [--stream]")
  process.exit(2)
}

const request = {
  desiredName: values.name,
  idealHammingDistance: Number(values["ideal-distance"]),
  interestingHammingDistance: Number(values["interesting-distance"])
}
const show = (r: { secret: string; hashedName: string; hammingDistance: number }) =>
  Console.log(`secret ${JSON.stringify(r.secret)} hashes to ${r.hashedName} (distance ${r.hammingDistance})`)

const program = Effect.gen(function*() {
  const finder = yield* GrpcClient.make(HashFinderDefinition)
  yield* Console.log(`searching for "${request.desiredName}" on ${values.target} (Ctrl+C cancels)`)
  if (values.stream) {
    yield* Stream.runForEach(finder.findRange(request), show)
  } else {
    yield* Effect.flatMap(finder.find(request), show)
  }
}).pipe(
  Effect.onInterrupt(() => Console.log("cancelled")),
  Effect.catchTag("GrpcError", (e) => Console.error(`${e.codeName}: ${e.message}`).pipe(Effect.andThen(Effect.sync(() => {
    process.exitCode = 1
  })))),
  Effect.provide(GrpcClient.layerChannel(values.target))
)

NodeRuntime.runMain(program)
