/**
 * Rich error details across real HTTP/2: our server to a plain grpc-js client
 * that decodes `google.rpc.Status` by hand, a plain grpc-js server that
 * encodes it by hand to our client, and through a relay of ours.
 */
import { assert, describe, it } from "@effect/vitest"
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Layer, Option } from "effect"
import { ErrorDetails, GrpcClient, GrpcError, GrpcServer } from "../src/index.js"
import { echoDefaults, rawClient, rawServer, startEcho, unaryCall } from "./helpers.js"

const { INVALID_ARGUMENT, NOT_FOUND } = GrpcError.Status

/** One of each standard detail, and a message of a type the library does not know. */
const everyKind: ReadonlyArray<ErrorDetails.Detail> = [
  ErrorDetails.detail("ErrorInfo", { reason: "NAME_EMPTY", domain: "example.com", metadata: { field: "name" } }),
  ErrorDetails.detail("RetryInfo", { retryDelay: { seconds: 3n, nanos: 500 } }),
  ErrorDetails.detail("DebugInfo", { stackEntries: ["a", "b"], detail: "debug" }),
  ErrorDetails.detail("QuotaFailure", { violations: [{ subject: "project:1", description: "too many" }] }),
  ErrorDetails.detail("PreconditionFailure", { violations: [{ type: "TOS", subject: "user", description: "not accepted" }] }),
  ErrorDetails.detail("BadRequest", { fieldViolations: [{ field: "name", description: "must not be empty" }] }),
  ErrorDetails.detail("RequestInfo", { requestId: "r-1", servingData: "s" }),
  ErrorDetails.detail("ResourceInfo", { resourceType: "user", resourceName: "u/1", owner: "o", description: "d" }),
  ErrorDetails.detail("Help", { links: [{ description: "docs", url: "https://example.com" }] }),
  ErrorDetails.detail("LocalizedMessage", { locale: "fr-FR", message: "nom vide" }),
  { _tag: "Unknown", typeUrl: "type.googleapis.com/example.Custom", value: new Uint8Array([8, 1]) }
]

/** google.rpc.Status written field by field, as a peer without our codecs would. */
const encodeStatusByHand = (code: number, message: string, details: ReadonlyArray<{ typeUrl: string; value: Uint8Array }>) => {
  const w = new BinaryWriter()
  w.uint32((1 << 3) | 0).int32(code)
  w.uint32((2 << 3) | 2).string(message)
  for (const d of details) {
    w.uint32((3 << 3) | 2).fork()
    w.uint32((1 << 3) | 2).string(d.typeUrl)
    w.uint32((2 << 3) | 2).bytes(d.value)
    w.join()
  }
  return Buffer.from(w.finish())
}

/** google.rpc.Status read field by field. */
const decodeStatusByHand = (bytes: Uint8Array) => {
  const r = new BinaryReader(bytes)
  const out = { code: 0, message: "", typeUrls: [] as Array<string> }
  while (r.pos < r.len) {
    const [field, wireType] = r.tag()
    if (field === 1) out.code = r.int32()
    else if (field === 2) out.message = r.string()
    else if (field === 3) {
      const any = new BinaryReader(r.bytes())
      while (any.pos < any.len) {
        const [f, t] = any.tag()
        if (f === 1) out.typeUrls.push(any.string())
        else any.skip(t)
      }
    } else r.skip(wireType)
  }
  return out
}

/** BadRequest { field_violations: [{ field, description }] } by hand. */
const badRequestByHand = (field: string, description: string) => {
  const w = new BinaryWriter()
  w.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string(field).uint32((2 << 3) | 2).string(description).join()
  return w.finish()
}

const echoClient = (port: number) =>
  Effect.map(GrpcClient.makeChannel(`127.0.0.1:${port}`), (channel) => GrpcClient.makeWith(channel, EchoDefinition))

describe("ErrorDetails", () => {
  it.effect("our server -> a plain grpc-js client decoding google.rpc.Status by hand, and -> our client, typed", () =>
    Effect.gen(function*() {
      const { client, server } = yield* startEcho({
        unaryEcho: () => Effect.fail(ErrorDetails.make(INVALID_ARGUMENT, "name is empty", everyKind))
      })
      const seen = yield* unaryCall(client, { message: "" })
      assert.strictEqual(seen.code, INVALID_ARGUMENT)
      assert.strictEqual(seen.details, "name is empty")
      const raw = seen.trailers.get(ErrorDetails.metadataKey)[0]
      assert.instanceOf(raw, Buffer)
      const byHand = decodeStatusByHand(raw as Buffer)
      assert.strictEqual(byHand.code, INVALID_ARGUMENT)
      assert.strictEqual(byHand.message, "name is empty")
      assert.deepStrictEqual(byHand.typeUrls, [
        ...everyKind.slice(0, 10).map((d) => `type.googleapis.com/google.rpc.${d._tag}`),
        "type.googleapis.com/example.Custom"
      ])

      const echo = yield* echoClient(server.port)
      const error = yield* Effect.flip(echo.unaryEcho({ message: "" }))
      assert.deepStrictEqual(ErrorDetails.get(error), everyKind)
      assert.deepStrictEqual(
        Option.map(ErrorDetails.find(error, "BadRequest"), (b) => b.fieldViolations[0]?.field),
        Option.some("name")
      )
      assert.deepStrictEqual(
        Option.map(ErrorDetails.find(error, "RetryInfo"), (r) => r.retryDelay),
        Option.some({ seconds: 3n, nanos: 500 })
      )
      assert.isTrue(Option.isNone(ErrorDetails.find(GrpcError.make(NOT_FOUND, "plain"), "BadRequest")))
    }))

  it.effect("a plain grpc-js server encoding google.rpc.Status by hand -> our client sees typed details", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer({
        unaryEcho: (_call, callback) => {
          const trailers = new grpc.Metadata()
          trailers.set(
            ErrorDetails.metadataKey,
            encodeStatusByHand(INVALID_ARGUMENT, "bad", [
              { typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: badRequestByHand("email", "not an address") }
            ])
          )
          callback({ code: INVALID_ARGUMENT, details: "bad", metadata: trailers })
        }
      })
      const echo = yield* echoClient(port)
      const error = yield* Effect.flip(echo.unaryEcho({ message: "x" }))
      assert.strictEqual(error.code, INVALID_ARGUMENT)
      assert.deepStrictEqual(ErrorDetails.get(error), [
        ErrorDetails.detail("BadRequest", { fieldViolations: [{ field: "email", description: "not an address" }] })
      ])
    }))

  it.effect("details round-trip through a relay of ours: upstream error -> relay handler fails with it -> plain client", () =>
    Effect.gen(function*() {
      const upstream = yield* startEcho({
        unaryEcho: () =>
          Effect.fail(ErrorDetails.make(NOT_FOUND, "no such user", [ErrorDetails.detail("ResourceInfo", { resourceName: "u/7" })]))
      })
      const relayContext = yield* Layer.build(
        GrpcServer.serve(EchoDefinition, {
          ...echoDefaults,
          // The upstream GrpcError, details and all, becomes this call's status.
          unaryEcho: (request) =>
            Effect.flatMap(GrpcClient.make(EchoDefinition), (echo) => echo.unaryEcho(request))
        }).pipe(
          Layer.provideMerge(GrpcServer.layer(GrpcServer.testOptions)),
          Layer.provide(GrpcClient.layerChannel(`127.0.0.1:${upstream.server.port}`))
        )
      )
      const relay = Context.get(relayContext, GrpcServer.GrpcServer)
      const client = yield* rawClient(`127.0.0.1:${relay.port}`)
      const seen = yield* unaryCall(client, { message: "u/7" })
      assert.strictEqual(seen.code, NOT_FOUND)
      const byHand = decodeStatusByHand(seen.trailers.get(ErrorDetails.metadataKey)[0] as Buffer)
      assert.deepStrictEqual(byHand, {
        code: NOT_FOUND,
        message: "no such user",
        typeUrls: ["type.googleapis.com/google.rpc.ResourceInfo"]
      })
      // and typed, through our client
      const echo = yield* echoClient(relay.port)
      const error = yield* Effect.flip(echo.unaryEcho({ message: "u/7" }))
      assert.deepStrictEqual(
        Option.map(ErrorDetails.find(error, "ResourceInfo"), (r) => r.resourceName),
        Option.some("u/7")
      )
    }))

  it.effect("details whose code disagrees with grpc-status are ignored; a differing message alone is accepted", () =>
    Effect.gen(function*() {
      const details = [{ typeUrl: "type.googleapis.com/google.rpc.BadRequest", value: badRequestByHand("a", "b") }]
      const { port } = yield* rawServer({
        unaryEcho: (call, callback) => {
          const trailers = new grpc.Metadata()
          const mismatch = call.request.message === "code"
          trailers.set(
            ErrorDetails.metadataKey,
            encodeStatusByHand(mismatch ? INVALID_ARGUMENT : NOT_FOUND, "another message", details)
          )
          callback({ code: NOT_FOUND, details: "not found", metadata: trailers })
        }
      })
      const echo = yield* echoClient(port)
      const codeMismatch = yield* Effect.flip(echo.unaryEcho({ message: "code" }))
      assert.strictEqual(codeMismatch.code, NOT_FOUND)
      assert.strictEqual(codeMismatch.message, "not found")
      assert.deepStrictEqual(ErrorDetails.get(codeMismatch), [])
      assert.isTrue(Option.isNone(ErrorDetails.status(codeMismatch)))

      const messageMismatch = yield* Effect.flip(echo.unaryEcho({ message: "message" }))
      assert.strictEqual(messageMismatch.message, "not found")
      const status = Option.getOrThrow(ErrorDetails.status(messageMismatch))
      assert.strictEqual(status.message, "another message")
      assert.strictEqual(status.details.length, 1)
    }))

  it("undecodable details are ignored; unknown or malformed google.rpc types stay encoded", () => {
    const trailers = new grpc.Metadata()
    trailers.set(ErrorDetails.metadataKey, Buffer.from([0xff, 0xff, 0xff]))
    assert.deepStrictEqual(ErrorDetails.get(GrpcError.make(NOT_FOUND, "x", trailers)), [])
    const odd = ErrorDetails.make(NOT_FOUND, "x", [
      { _tag: "Unknown", typeUrl: "type.googleapis.com/google.rpc.NotAStandardType", value: new Uint8Array([1]) }
    ])
    assert.deepStrictEqual(ErrorDetails.get(odd).map((d) => d._tag), ["Unknown"])
  })
})
