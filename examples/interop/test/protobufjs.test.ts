/**
 * The interop messages between the adapter's codec and protobufjs, the codec
 * most grpc-js users run (through @grpc/proto-loader, as grpc.io's Node
 * quickstart does): bytes encoded by one decode to the same message in the
 * other, and a plain grpc-js client built with @grpc/proto-loader talks to
 * our interop server over HTTP/2.
 */
import { assert, describe, it } from "@effect/vitest"
import { toGrpcJs } from "@fiber-grpc/grpc/ServiceDefinition"
import {
  ClientConfigureRequest,
  LoadBalancerStatsResponse,
  SimpleRequest,
  SimpleResponse,
  StreamingInputCallRequest,
  StreamingInputCallResponse,
  StreamingOutputCallRequest,
  StreamingOutputCallResponse
} from "@fiber-grpc/protos/grpc/testing/messages"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import protobuf from "protobufjs"
import { startServer } from "./helpers.js"

const protosDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../protos")
const root = protobuf.loadSync(path.join(protosDir, "grpc/testing/messages.proto"))

/** A ts-proto message codec, as far as these tests use it. */
interface TsProto<T> {
  encode(message: T): { finish(): Uint8Array }
  decode(input: Uint8Array): T
  fromPartial(object: never): T
}

const payload = (size: number) => ({ type: 0, body: Buffer.alloc(size, 0xab) })

/**
 * The adapter's codec for one message type, as the server and the client get
 * it: from the grpc-js method definition it builds for a service using it.
 */
const adapterCodec = <T>(tsProto: TsProto<T>) => {
  const method = toGrpcJs({
    name: "T",
    fullName: "test.T",
    methods: { m: { name: "M", requestType: tsProto, responseType: tsProto, requestStream: false, responseStream: false } }
  }).m!
  return { serialize: (m: T) => method.requestSerialize(m), deserialize: (b: Buffer) => method.responseDeserialize(b) as T }
}

/** One interop message type with a sample, checked in both directions. */
const roundTrip = <T>(name: string, tsProto: TsProto<T>, message: T) =>
  it(name, () => {
    const pb = root.lookupType(`grpc.testing.${name}`)
    const { deserialize, serialize } = adapterCodec(tsProto)
    // protobufjs bytes -> the adapter's decode.
    const pbBytes = pb.encode(pb.fromObject(message as Record<string, unknown>)).finish()
    assert.deepStrictEqual(deserialize(Buffer.from(pbBytes)), message, `${name}: protobufjs -> adapter`)
    // The adapter's bytes (twice: the first encode probes, the second is the
    // fast path) -> protobufjs's decode.
    for (let i = 0; i < 2; i++) {
      const decoded = pb.toObject(pb.decode(serialize(message)))
      // toObject leaves unset fields out; fromPartial fills ts-proto's defaults.
      assert.deepStrictEqual(tsProto.fromPartial(decoded as never), message, `${name}: adapter -> protobufjs (${i})`)
    }
  })

// Each interop message with every field set (maps, nested, repeated, enums, bytes).
describe("interop messages: the adapter's codec against protobufjs", () => {
  roundTrip("SimpleRequest", SimpleRequest, SimpleRequest.fromPartial({
    responseType: 0,
    responseSize: 314159,
    payload: payload(271828),
    fillUsername: true,
    fillOauthScope: true,
    responseCompressed: { value: true },
    responseStatus: { code: 2, message: "déjà vu ✓" },
    expectCompressed: { value: false },
    fillServerId: true,
    fillGrpclbRouteType: true,
    orcaPerQueryReport: { cpuUtilization: 0.5, memoryUtilization: 0.25, requestCost: { a: 1.5 }, utilization: { b: 0.75 } }
  }))
  roundTrip("SimpleResponse", SimpleResponse, SimpleResponse.fromPartial({
    payload: payload(64),
    username: "user",
    oauthScope: "scope",
    serverId: "server-1",
    grpclbRouteType: 1,
    hostname: "host"
  }))
  roundTrip("StreamingOutputCallRequest", StreamingOutputCallRequest, StreamingOutputCallRequest.fromPartial({
    responseType: 0,
    responseParameters: [{ size: 31415, intervalUs: 10, compressed: { value: true } }, { size: 9 }, { size: 58979 }],
    payload: payload(1),
    responseStatus: { code: 0, message: "" }
  }))
  roundTrip("StreamingOutputCallResponse", StreamingOutputCallResponse, StreamingOutputCallResponse.fromPartial({
    payload: payload(4096)
  }))
  roundTrip("StreamingInputCallRequest", StreamingInputCallRequest, StreamingInputCallRequest.fromPartial({
    payload: payload(45904),
    expectCompressed: { value: true }
  }))
  roundTrip("StreamingInputCallResponse", StreamingInputCallResponse, StreamingInputCallResponse.fromPartial({
    aggregatedPayloadSize: 74922
  }))
  roundTrip("LoadBalancerStatsResponse", LoadBalancerStatsResponse, LoadBalancerStatsResponse.fromPartial({
    rpcsByPeer: { "peer-a": 3, "peer-b": 4 },
    numFailures: 1,
    rpcsByMethod: { UnaryCall: { rpcsByPeer: { "peer-a": 2 } } },
    metadatasByPeer: { "peer-a": { rpcMetadata: [{ metadata: [{ key: "k", value: "v", type: 2 }] }] } }
  }))
  roundTrip("ClientConfigureRequest", ClientConfigureRequest, ClientConfigureRequest.fromPartial({
    types: [0, 1],
    metadata: [{ type: 1, key: "x-k", value: "v" }],
    timeoutSec: 5
  }))
})

// The way grpc.io's Node quickstart loads a service.
const loadOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }

interface QuickstartResponse {
  readonly payload: { readonly type: string; readonly body: Buffer } | null
}
type QuickstartClient = grpc.Client & {
  unaryCall(request: object, callback: (error: grpc.ServiceError | null, response: QuickstartResponse) => void): void
  streamingOutputCall(request: object): grpc.ClientReadableStream<QuickstartResponse>
  fullDuplexCall(): grpc.ClientDuplexStream<object, QuickstartResponse>
}

const quickstartClient = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const definition = protoLoader.loadSync("grpc/testing/test.proto", { ...loadOptions, includeDirs: [protosDir] })
      // loadPackageDefinition's result is untyped (keyed by package path).
      const pkg = grpc.loadPackageDefinition(definition) as unknown as {
        grpc: { testing: { TestService: new(address: string, credentials: grpc.ChannelCredentials) => QuickstartClient } }
      }
      return new pkg.grpc.testing.TestService(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
    }),
    (client) => Effect.sync(() => client.close())
  )

describe("a grpc-js client on @grpc/proto-loader (protobufjs codecs) against our interop server", () => {
  it.effect("unary, server-streaming and bidi payloads arrive intact both ways", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* quickstartClient(server.port)
      const unary = yield* Effect.callback<QuickstartResponse>((resume) =>
        client.unaryCall(
          { response_size: 314159, payload: { body: Buffer.alloc(271828) } },
          (error, response) => resume(error ? Effect.die(error) : Effect.succeed(response))
        )
      )
      assert.strictEqual(unary.payload?.body.length, 314159)

      const sizes = [31415, 9, 2653, 58979]
      const streamed = yield* Effect.callback<Array<number>>((resume) => {
        const got: Array<number> = []
        const call = client.streamingOutputCall({ response_parameters: sizes.map((size) => ({ size })) })
        call.on("data", (r: QuickstartResponse) => got.push(r.payload?.body.length ?? -1))
        call.on("error", (e) => resume(Effect.die(e)))
        call.on("end", () => resume(Effect.succeed(got)))
      })
      assert.deepStrictEqual(streamed, sizes)

      const pingPong = yield* Effect.callback<Array<number>>((resume) => {
        const got: Array<number> = []
        const call = client.fullDuplexCall()
        call.on("data", (r: QuickstartResponse) => got.push(r.payload?.body.length ?? -1))
        call.on("error", (e) => resume(Effect.die(e)))
        call.on("end", () => resume(Effect.succeed(got)))
        for (const size of sizes) {
          call.write({ response_parameters: [{ size }], payload: { body: Buffer.alloc(size / 2) } })
        }
        call.end()
      })
      assert.deepStrictEqual(pingPong, sizes)
    }))
})
