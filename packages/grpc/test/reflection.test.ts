/**
 * GrpcReflection over real HTTP/2, asked by a reflection client written here
 * on plain @grpc/grpc-js. It resolves a method's input type from the
 * descriptors the server sends, as grpcurl does, with @bufbuild/protobuf's
 * descriptor registry (an implementation we did not write, which checks that
 * every dependency is there), and then calls the method with a message built
 * from that descriptor alone.
 */
import { assert, describe, it } from "@effect/vitest"
import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf"
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { TestServiceDefinition } from "@fiber-grpc/protos/grpc/testing/test"
import { file as testProto } from "@fiber-grpc/protos/grpc/testing/test.descriptor"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Exit, Layer, Logger, Queue, Scope } from "effect"
import {
  ServerReflectionRequest,
  ServerReflectionResponse
} from "../src/generated/grpc/reflection/v1/reflection.js"
import { GrpcHealth, GrpcReflection, GrpcServer } from "../src/index.js"
import type { ServiceHandlers } from "../src/ServiceDefinition.js"
import { echoDefaults } from "./helpers.js"

const testService: ServiceHandlers<typeof TestServiceDefinition, never> = {
  emptyCall: () => Effect.succeed({}),
  unaryCall: (request) =>
    Effect.succeed({
      payload: { type: 0, body: Buffer.alloc(request.responseSize) },
      username: "",
      oauthScope: "",
      serverId: "",
      grpclbRouteType: 0,
      hostname: ""
    }),
  cacheableUnaryCall: () => Effect.die("unused"),
  streamingOutputCall: () => Effect.die("unused") as never,
  streamingInputCall: () => Effect.die("unused"),
  fullDuplexCall: () => Effect.die("unused") as never,
  halfDuplexCall: () => Effect.die("unused") as never,
  unimplementedCall: () => Effect.die("unused")
}

/** Echo, TestService, health and reflection (with only TestService's descriptors given). */
const start = Effect.gen(function*() {
  const context = yield* Layer.build(
    Layer.mergeAll(
      GrpcServer.serve(EchoDefinition, echoDefaults),
      GrpcServer.serve(TestServiceDefinition, testService),
      GrpcHealth.layer,
      GrpcReflection.layer([testProto])
    ).pipe(Layer.provideMerge(GrpcServer.layer(GrpcServer.testOptions)))
  )
  const server = Context.get(context, GrpcServer.GrpcServer)
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
    (client) => Effect.sync(() => client.close())
  )
  return { server, client }
})

type Request = Partial<ServerReflectionRequest>

/**
 * One ServerReflectionInfo stream on a plain grpc-js client. v1 and v1alpha
 * messages are identical on the wire, so the v1 codecs serve both paths.
 */
const reflectionStream = (client: grpc.Client, version: "v1" | "v1alpha") =>
  Effect.gen(function*() {
    const responses = yield* Queue.unbounded<ServerReflectionResponse>()
    const call = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const call = client.makeBidiStreamRequest(
          `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
          (request: ServerReflectionRequest) => Buffer.from(ServerReflectionRequest.encode(request).finish()),
          (bytes: Buffer) => ServerReflectionResponse.decode(bytes)
        )
        call.on("data", (response: ServerReflectionResponse) => Queue.offerUnsafe(responses, response))
        call.on("error", () => {})
        return call
      }),
      (call) => Effect.sync(() => call.end())
    )
    return (request: Request) =>
      Effect.andThen(
        Effect.sync(() => call.write(ServerReflectionRequest.fromPartial({ host: "localhost", ...request }))),
        Queue.take(responses)
      )
  })

const files = (response: ServerReflectionResponse): Array<FileDescriptorProto> =>
  (response.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes))

describe("GrpcReflection", () => {
  for (const version of ["v1", "v1alpha"] as const) {
    it.effect(`${version}: lists exactly the services served, reflection and health included`, () =>
      Effect.gen(function*() {
        const { client } = yield* start
        const ask = yield* reflectionStream(client, version)
        const response = yield* ask({ listServices: "" })
        assert.strictEqual(response.validHost, "localhost")
        assert.deepStrictEqual(
          response.listServicesResponse?.service.map((s) => s.name).sort(),
          [
            "grpc.examples.echo.Echo",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.testing.TestService"
          ]
        )
      }))

    it.effect(`${version}: resolves a method's input type from the descriptors and calls it, as grpcurl does`, () =>
      Effect.gen(function*() {
        const { client } = yield* start
        const ask = yield* reflectionStream(client, version)
        const response = yield* ask({ fileContainingSymbol: "grpc.testing.TestService" })
        const received = files(response)
        // The file first, then its transitive dependencies.
        assert.deepStrictEqual(received.map((f) => f.name), [
          "grpc/testing/test.proto",
          "grpc/testing/empty.proto",
          "grpc/testing/messages.proto"
        ])
        assert.strictEqual(received[0]!.syntax, "proto3")
        // A registry that rejects a file whose imports are missing or whose map entries are malformed.
        const registry = createFileRegistry(received[0]!, (name) => received.find((f) => f.name === name))
        const service = registry.getService("grpc.testing.TestService")!
        const method = service.methods.find((m) => m.name === "UnaryCall")!
        assert.strictEqual(method.input.typeName, "grpc.testing.SimpleRequest")
        assert.strictEqual(method.output.typeName, "grpc.testing.SimpleResponse")
        const rpcsByPeer = registry.getMessage("grpc.testing.LoadBalancerStatsResponse")!.fields.find((f) =>
          f.name === "rpcs_by_peer"
        )!
        assert.strictEqual(rpcsByPeer.fieldKind, "map")

        // A dynamic call, built only from what reflection returned.
        const request = toBinary(method.input, create(method.input, { responseSize: 7 }))
        const reply = yield* Effect.callback<Uint8Array>((resume) => {
          client.makeUnaryRequest(
            `/${service.typeName}/${method.name}`,
            (bytes: Uint8Array) => Buffer.from(bytes),
            (bytes: Buffer) => bytes,
            request,
            (error, value) => resume(error ? Effect.die(error) : Effect.succeed(value!))
          )
        })
        const decoded = fromBinary(method.output, reply) as unknown as { payload: { body: Uint8Array } }
        assert.strictEqual(decoded.payload.body.length, 7)
      }))

    it.effect(`${version}: unknown symbols, files and extensions get NOT_FOUND on the stream, which keeps working`, () =>
      Effect.gen(function*() {
        const { client } = yield* start
        const ask = yield* reflectionStream(client, version)
        const unknown = yield* ask({ fileContainingSymbol: "no.such.Symbol" })
        assert.deepStrictEqual(unknown.errorResponse, {
          errorCode: grpc.status.NOT_FOUND,
          errorMessage: "symbol not found: no.such.Symbol"
        })
        assert.strictEqual(unknown.originalRequest?.fileContainingSymbol, "no.such.Symbol")
        assert.strictEqual((yield* ask({ fileByFilename: "no/such.proto" })).errorResponse?.errorCode, grpc.status.NOT_FOUND)
        assert.strictEqual(
          (yield* ask({ fileContainingExtension: { containingType: "grpc.testing.SimpleRequest", extensionNumber: 99 } }))
            .errorResponse?.errorCode,
          grpc.status.NOT_FOUND
        )
        assert.strictEqual(
          (yield* ask({ allExtensionNumbersOfType: "no.such.Type" })).errorResponse?.errorCode,
          grpc.status.NOT_FOUND
        )
        // Echo is served but its descriptors were not given: listed, not resolvable.
        assert.strictEqual(
          (yield* ask({ fileContainingSymbol: "grpc.examples.echo.Echo" })).errorResponse?.errorCode,
          grpc.status.NOT_FOUND
        )
        // The same stream still answers.
        const health = yield* ask({ fileContainingSymbol: "grpc.health.v1.Health.Watch" })
        assert.deepStrictEqual(files(health).map((f) => f.name), ["grpc/health/v1/health.proto"])
        const none = yield* ask({ allExtensionNumbersOfType: "grpc.testing.SimpleRequest" })
        assert.deepStrictEqual(none.allExtensionNumbersResponse, {
          baseTypeName: "grpc.testing.SimpleRequest",
          extensionNumber: []
        })
      }))
  }

  it.effect("listing a served service whose descriptor was not given logs one warning naming it", () => {
    const warnings: Array<string> = []
    const capture = Logger.make((options) => {
      if (options.logLevel === "Warn") warnings.push(String(options.message))
    })
    return Effect.gen(function*() {
      const { client } = yield* start
      for (const version of ["v1", "v1alpha"] as const) {
        const ask = yield* reflectionStream(client, version)
        yield* ask({ listServices: "" })
        yield* ask({ listServices: "" })
      }
      // Echo is served without its descriptor; TestService, health and reflection have theirs.
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "grpc.examples.echo.Echo")
      assert.notInclude(warnings[0], "grpc.testing.TestService")
    }).pipe(Effect.provide(Logger.layer([capture])))
  })

  it.effect("file_by_filename and message, field and enum symbols; dependencies already sent on the stream are not sent again", () =>
    Effect.gen(function*() {
      const { client } = yield* start
      const ask = yield* reflectionStream(client, "v1")
      assert.deepStrictEqual(files(yield* ask({ fileByFilename: "grpc/testing/messages.proto" })).map((f) => f.name), [
        "grpc/testing/messages.proto"
      ])
      for (const symbol of ["grpc.testing.SimpleRequest", "grpc.testing.SimpleRequest.response_size", "grpc.testing.PayloadType", "grpc.testing.COMPRESSABLE", "grpc.testing.LoadBalancerStatsResponse.RpcsByPeer"]) {
        assert.deepStrictEqual(files(yield* ask({ fileContainingSymbol: symbol })).map((f) => f.name), [
          "grpc/testing/messages.proto"
        ], symbol)
      }
      // messages.proto was sent: only test.proto and empty.proto now.
      assert.deepStrictEqual(files(yield* ask({ fileContainingSymbol: "grpc.testing.TestService.UnaryCall" })).map((f) => f.name), [
        "grpc/testing/test.proto",
        "grpc/testing/empty.proto"
      ])
    }))

  it.effect("a service registered later is listed once it is served, and no longer once removed", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        GrpcReflection.layer([]).pipe(Layer.provideMerge(GrpcServer.layer(GrpcServer.testOptions)))
      )
      const server = Context.get(context, GrpcServer.GrpcServer)
      const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      const ask = yield* reflectionStream(client, "v1")
      const names = (r: ServerReflectionResponse) => r.listServicesResponse?.service.map((s) => s.name)
      const reflection = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
      assert.deepStrictEqual(names(yield* ask({ listServices: "" })), reflection)
      const scope = yield* Scope.make()
      yield* server.addService(EchoDefinition, echoDefaults).pipe(Scope.provide(scope))
      assert.deepStrictEqual(names(yield* ask({ listServices: "" })), [...reflection, "grpc.examples.echo.Echo"])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(names(yield* ask({ listServices: "" })), reflection)
    }))
})
