/**
 * `pnpm relay` as a child process (through scripts/run.sh, which execs Node,
 * so signals reach it), for the command-line tests.
 */
import { EchoClient } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/**
 * Starts the relay with `args`, waits for `listening on <port>`, and returns
 * a plain grpc-js client to it, and a way to SIGTERM it and read its exit code.
 */
export const startRelayProcess = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const root = fileURLToPath(new URL("../../..", import.meta.url))
    const child = spawn("sh", ["scripts/run.sh", "examples/relay/src/main.ts", "--port", "0", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    const exited = Effect.callback<number | null>((resume) => {
      if (child.exitCode !== null) resume(Effect.succeed(child.exitCode))
      else child.on("exit", (code) => resume(Effect.succeed(code)))
    })
    const port = yield* Effect.callback<number>((resume) => {
      let out = ""
      // A process that dies before listening fails the test at once, not at its timeout.
      const died = (code: number | null, signal: string | null) =>
        resume(Effect.die(new Error(`the relay exited (${code ?? signal}) before listening:\n${out}`)))
      child.once("exit", died)
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        const match = /^listening on (\d+)$/m.exec(out)
        if (match) {
          child.off("exit", died)
          resume(Effect.succeed(Number(match[1])))
        }
      })
      return Effect.sync(() => child.off("exit", died))
    })
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
      (c) => Effect.sync(() => c.close())
    )
    return {
      client,
      /** Sends SIGTERM and returns the exit code. */
      terminate: Effect.suspend(() => {
        child.kill("SIGTERM")
        return exited
      })
    }
  })
