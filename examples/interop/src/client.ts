/**
 * The gRPC interop test client, built on GrpcClient.
 *
 *   pnpm interop:client --server_host <h> --server_port <p> --test_case <name|all>
 *                       [--use_tls [--use_test_ca] [--server_host_override <name>] [--ca_file <pem>]]
 *
 * Prints `PASS <case>` or `FAIL <case> <reason>` per case, then
 * `N passed, M failed`; exits 0 only if every case passed.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as grpc from "@grpc/grpc-js"
import { Cause, Console, Effect, Exit } from "effect"
import * as fs from "node:fs"
import { ArgsError, parseFlags, parsePort } from "./args.js"
import { allCases, type CaseResult, cases, layer, notes, runCase, type Target } from "./cases.js"
import { certPath, isMain } from "./files.js"

const usage = "usage: pnpm interop:client --server_host <host> --server_port <port> --test_case <name|all> " +
  "[--use_tls] [--use_test_ca] [--server_host_override <name>] [--ca_file <pem>]"

export interface ClientOptions {
  readonly serverHost: string
  readonly serverPort: number
  readonly testCases: ReadonlyArray<string>
  readonly useTls: boolean
  readonly useTestCa: boolean
  readonly serverHostOverride: string | undefined
  readonly caFile: string | undefined
}

export const parseClientArgs = (argv: ReadonlyArray<string>): ClientOptions => {
  const flags = parseFlags(argv, {
    strings: [
      "server_host",
      "server_port",
      "test_case",
      "server_host_override",
      "ca_file",
      // Accepted for compatibility with the official clients; not used by these cases.
      "default_service_account",
      "oauth_scope",
      "service_account_key_file"
    ],
    booleans: ["use_tls", "use_test_ca"]
  })
  const port = flags.strings.get("server_port")
  if (port === undefined) throw new ArgsError(`--server_port is required\n${usage}`)
  const testCase = flags.strings.get("test_case") ?? "all"
  const testCases = testCase === "all" ? allCases : testCase.split(",")
  for (const name of testCases) {
    if (cases[name] === undefined) {
      throw new ArgsError(`unknown test case "${name}"; known: all, ${Object.keys(cases).join(", ")}`)
    }
  }
  return {
    serverHost: flags.strings.get("server_host") ?? "localhost",
    serverPort: parsePort("server_port", port),
    testCases,
    useTls: flags.booleans.get("use_tls") ?? false,
    useTestCa: flags.booleans.get("use_test_ca") ?? false,
    serverHostOverride: flags.strings.get("server_host_override"),
    caFile: flags.strings.get("ca_file")
  }
}

/** The channel's address, credentials and options, as the official clients derive them from the flags. */
export const targetOf = (options: ClientOptions): Target => {
  const host = options.serverHost.includes(":") && !options.serverHost.startsWith("[")
    ? `[${options.serverHost}]`
    : options.serverHost
  const override = options.serverHostOverride
  return {
    address: `${host}:${options.serverPort}`,
    credentials: options.useTls
      ? grpc.credentials.createSsl(
        options.useTestCa || options.caFile !== undefined
          ? fs.readFileSync(options.caFile ?? certPath("ca.pem"))
          : null
      )
      : grpc.credentials.createInsecure(),
    channelOptions: override === undefined
      ? {}
      : { "grpc.ssl_target_name_override": override, "grpc.default_authority": override }
  }
}

/** Runs the cases one after another on one channel, printing a line for each. */
export const runAll = (
  target: Target,
  names: ReadonlyArray<string>,
  print: (line: string) => Effect.Effect<void> = Console.log
): Effect.Effect<ReadonlyArray<CaseResult>> =>
  Effect.forEach(names, (name) =>
    runCase(name).pipe(
      Effect.tap((result) => print(result.failure === undefined ? `PASS ${name}` : `FAIL ${name} ${result.failure}`))
    )).pipe(Effect.provide(layer(target)))

/** The exit code the process ends with. */
let exitCode = 1

export const main = (argv: ReadonlyArray<string>): Effect.Effect<void, ArgsError> =>
  Effect.gen(function*() {
    const options = yield* Effect.try({
      try: () => parseClientArgs(argv),
      catch: (e) => e instanceof ArgsError ? e : new ArgsError(String(e))
    })
    const target = yield* Effect.try({
      try: () => targetOf(options),
      catch: (e) => new ArgsError(`cannot set up TLS: ${String(e)}`)
    })
    // On stderr, so stdout holds exactly one PASS/FAIL line per case and the summary.
    for (const note of notes) yield* Console.error(`note: ${note}`)
    const results = yield* runAll(target, options.testCases)
    const failed = results.filter((r) => r.failure !== undefined).length
    yield* Console.log(`${results.length - failed} passed, ${failed} failed`)
    exitCode = failed === 0 ? 0 : 1
  })

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).pipe(
    Effect.tapCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : Console.error(Cause.pretty(cause))),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      teardown: (exit) => {
        // Exit with the interop result: 0 only if every case passed.
        process.exit(Exit.isSuccess(exit) ? exitCode : Cause.hasInterruptsOnly(exit.cause) ? 130 : 2)
      }
    })
  )
}
