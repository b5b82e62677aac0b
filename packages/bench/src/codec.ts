/**
 * The codec alone, in its own process: encode and decode ns per message for
 *
 * - ts-proto stock: `encode(message).finish()` (a Buffer view of the result)
 *   and `decode(bytes)`, what the adapter did before its codec and what
 *   nice-grpc does;
 * - the adapter's path: the serialize/deserialize functions GrpcServer and
 *   GrpcClient give grpc-js (`toGrpcJs`);
 * - protobufjs through @grpc/proto-loader, as grpc.io's Node quickstart loads
 *   it (its serialize/deserialize include proto-loader's object conversion).
 *
 * on small, 4 KiB and 1 MiB messages, and ts-proto's own options compared
 * (forceLong, env) on a message with every kind of field. Replies on IPC (or
 * prints, when run by hand) an array of CodecRow.
 *
 *   codec.ts [--quick]
 */
import { toGrpcJs } from "@fiber-grpc/grpc/ServiceDefinition"
import { EchoDefinition, EchoResponse } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { SimpleResponse } from "@fiber-grpc/protos/grpc/testing/messages"
import { TestServiceDefinition } from "@fiber-grpc/protos/grpc/testing/test"
import * as protoLoader from "@grpc/proto-loader"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { protosDir } from "./echo.js"

export interface CodecRow {
  readonly message: string
  readonly impl: string
  readonly op: "encode" | "decode"
  /** Median ns per message over the rounds, with the min and max. */
  readonly ns: number
  readonly min: number
  readonly max: number
}

const quick = process.argv.includes("--quick")
const rounds = quick ? 3 : 7
const windowMs = quick ? 40 : 80

/** ns per call of `f`, over at least `windowMs` (after a short warm-up). */
const time = (f: () => unknown): number => {
  let n = 1
  for (;;) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) f()
    const ns = Number(process.hrtime.bigint() - t0)
    if (ns >= windowMs * 1e6) return ns / n
    n = ns < 1e6 ? n * 10 : Math.ceil(n * (windowMs * 1e6 / ns) * 1.1)
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Runs each candidate once per round, in alternating order, and keeps the median. */
const compare = (
  message: string,
  op: "encode" | "decode",
  candidates: ReadonlyArray<readonly [string, () => unknown]>
): Array<CodecRow> => {
  for (const [, f] of candidates) time(f) // warm-up
  const samples = candidates.map(() => [] as Array<number>)
  for (let r = 0; r < rounds; r++) {
    const order = candidates.map((_, i) => i)
    if (r % 2 === 1) order.reverse()
    for (const i of order) samples[i]!.push(time(candidates[i]![1]))
  }
  return candidates.map(([impl], i) => ({
    message,
    impl,
    op,
    ns: median(samples[i]!),
    min: Math.min(...samples[i]!),
    max: Math.max(...samples[i]!)
  }))
}

/** A Buffer view of ts-proto's result, as the adapter used to return it. */
const view = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const loaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protosDir] }

export const measureCodecs = async (): Promise<Array<CodecRow>> => {
  const rows: Array<CodecRow> = []
  const echoLoader = protoLoader.loadSync("grpc/examples/echo/echo.proto", loaderOptions)["grpc.examples.echo.Echo"] as
    protoLoader.ServiceDefinition
  const testLoader = protoLoader.loadSync("grpc/testing/test.proto", loaderOptions)["grpc.testing.TestService"] as
    protoLoader.ServiceDefinition
  // The server's codecs (responses lent to grpc-js), and the client's (a copy per message).
  const echoAdapter = toGrpcJs(EchoDefinition, true)["unaryEcho"]!
  const testAdapter = toGrpcJs(TestServiceDefinition, true)["unaryCall"]!
  const echoClient = toGrpcJs(EchoDefinition)["unaryEcho"]!
  const testClient = toGrpcJs(TestServiceDefinition)["unaryCall"]!
  const echoPl = echoLoader["UnaryEcho"]!
  const testPl = testLoader["UnaryCall"]!

  const sizes = [["64 B", 64], ["4 KiB", 4096], ["1 MiB", 1 << 20]] as const
  for (const [label, size] of sizes) {
    const echo = { message: "x".repeat(size) }
    const simple = SimpleResponse.fromPartial({ payload: { type: 0, body: Buffer.alloc(size, 7) }, username: "user" })
    const cases = [
      [`EchoResponse, ${label} string`, echo, EchoResponse, echoAdapter, echoClient, echoPl],
      [`SimpleResponse, ${label} bytes payload`, simple, SimpleResponse, testAdapter, testClient, testPl]
    ] as const
    for (const [name, message, tsProto, adapter, client, pl] of cases) {
      // The object proto-loader's serializer gets is what its deserializer gives.
      const plMessage = pl.responseDeserialize(pl.responseSerialize(message))
      rows.push(...compare(name, "encode", [
        ["ts-proto stock", () => view((tsProto as typeof EchoResponse).encode(message as never).finish())],
        ["adapter", () => adapter.responseSerialize(message)],
        ["adapter, client", () => client.responseSerialize(message)],
        ["protobufjs (proto-loader)", () => pl.responseSerialize(plMessage)]
      ]))
      const bytes = Buffer.from((tsProto as typeof EchoResponse).encode(message as never).finish())
      rows.push(...compare(name, "decode", [
        ["ts-proto stock", () => (tsProto as typeof EchoResponse).decode(bytes)],
        ["adapter", () => adapter.responseDeserialize(bytes)],
        ["protobufjs (proto-loader)", () => pl.responseDeserialize(bytes)]
      ]))
    }
  }
  rows.push(...await measureOptions())
  return rows
}

// ------------------------------------------------- ts-proto options compared
const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "../../..")

/** The ts-proto option sets compared (all with the adapter's codec). */
const variants = {
  "forceLong=bigint, env=node": ["forceLong=bigint", "env=node"],
  "forceLong=string, env=node": ["forceLong=string", "env=node"],
  "forceLong=number, env=node": ["forceLong=number", "env=node"],
  "forceLong=long, env=node": ["forceLong=long", "env=node"],
  "forceLong=bigint, env=browser": ["forceLong=bigint", "env=browser"]
} as const

interface Generated {
  readonly Everything: {
    fromPartial(object: object): object
    encode(message: object): { finish(): Uint8Array }
    decode(input: Uint8Array): object
  }
  readonly MirrorDefinition: Parameters<typeof toGrpcJs>[0]
}

/**
 * Generates packages/grpc/test/codec/everything.proto under each option set
 * (as packages/grpc/test/codec.test.ts does) and measures one message with
 * int64s (scalars, repeated, map values) and bytes fields (4 KiB in all).
 */
const measureOptions = async (): Promise<Array<CodecRow>> => {
  const out = path.join(here, "../.codec-variants")
  fs.rmSync(out, { recursive: true, force: true })
  const encoders: Array<[string, () => unknown]> = []
  const decoders: Array<[string, () => unknown]> = []
  for (const [name, options] of Object.entries(variants)) {
    const dir = name.toLowerCase().replace(/[^a-z]+/g, "-")
    const template = {
      version: "v2",
      plugins: [{
        local: path.join(root, "node_modules/.bin/protoc-gen-ts_proto"),
        out: dir,
        opt: ["outputServices=generic-definitions", "useExactTypes=false", "esModuleInterop=true", "importSuffix=.js", ...options]
      }]
    }
    execFileSync(
      path.join(root, "node_modules/.bin/buf"),
      ["generate", path.join(root, "packages/grpc/test/codec"), "--template", JSON.stringify(template), "--output", out],
      { cwd: root, stdio: "inherit" }
    )
    const { Everything, MirrorDefinition }: Generated = await import(path.join(out, dir, "everything.ts"))
    const long = (v: number) => options[0] === "forceLong=string" ? String(v) : options[0] === "forceLong=bigint" ? BigInt(v) : v
    const message = Everything.fromPartial({
      i32: 7,
      i64: long(-1234567890123),
      u64: long(9876543210),
      s64: long(-5),
      f64: long(42),
      longs: [1, 2, 3, 1e12, -7, 99, 1 << 30, 5, 6, 7].map(long),
      counts: { a: long(1), b: long(2), c: long(3e10) },
      s: "hello",
      by: Buffer.alloc(2048, 1),
      blobs: { k: Buffer.alloc(2048, 2) },
      inner: { name: "n", values: [1, 2, 3], blob: Buffer.alloc(16, 3) }
    })
    const codec = toGrpcJs(MirrorDefinition)["unary"]!
    const bytes = codec.requestSerialize(message)
    encoders.push([name, () => codec.requestSerialize(message)])
    decoders.push([name, () => codec.requestDeserialize(bytes)])
  }
  const label = "every field kind: int64 scalars, repeated and map values; 4 KiB of bytes fields"
  return [...compare(label, "encode", encoders), ...compare(label, "decode", decoders)]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void measureCodecs().then((rows) => {
    if (process.send !== undefined) process.send(rows, () => process.exit(0))
    else {
      for (const r of rows) console.log(`${r.message} | ${r.op} | ${r.impl} | ${r.ns.toFixed(0)} ns [${r.min.toFixed(0)}-${r.max.toFixed(0)}]`)
    }
  })
}
