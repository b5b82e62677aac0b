/**
 * Server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha` (the
 * one grpcurl and older tools still try first), so that grpcurl, grpcui and
 * Postman can list and call the server's services without .proto files.
 *
 * - `list_services` answers exactly the services the server serves at that
 *   moment (reflection and health included), from `GrpcServer.services`.
 * - `file_by_filename`, `file_containing_symbol`, `file_containing_extension`
 *   and `all_extension_numbers_of_type` are answered from descriptors embedded
 *   at codegen time by `protoc-gen-fiber-grpc` (the `*.descriptor.ts` files
 *   next to ts-proto's output), not from .proto files at runtime, so it works
 *   in a bundle. A file is sent with its transitive dependencies, each at
 *   most once per stream (the requested file always).
 * - An unknown file, symbol or extension gets an `error_response` with
 *   `NOT_FOUND` on the stream, which keeps working.
 *
 * Descriptors come straight from protoc / buf, so strict clients (Python's
 * descriptor pool, grpcurl) accept them, map fields included (descriptors
 * rebuilt by `@grpc/proto-loader` name map entries in a way they reject).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { GrpcReflection, GrpcServer } from "@fiber-grpc/grpc"
 * import { file as testProto } from "./gen/grpc/testing/test.descriptor.js"
 *
 * const main = Layer.mergeAll(TestService, GrpcReflection.layer([testProto])).pipe(
 *   Layer.provideMerge(GrpcServer.layer({ port: 50051 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @module
 */
import { Effect, Layer, Stream } from "effect"
import { file as healthProto } from "./generated/grpc/health/v1/health.descriptor.js"
import { file as reflectionV1Proto } from "./generated/grpc/reflection/v1/reflection.descriptor.js"
import {
  ServerReflectionDefinition as V1Definition,
  type ServerReflectionRequest,
  type ServerReflectionResponse
} from "./generated/grpc/reflection/v1/reflection.js"
import { file as reflectionV1alphaProto } from "./generated/grpc/reflection/v1alpha/reflection.descriptor.js"
import { ServerReflectionDefinition as V1alphaDefinition } from "./generated/grpc/reflection/v1alpha/reflection.js"
import * as GrpcError from "./GrpcError.js"
import * as GrpcServer from "./GrpcServer.js"
import { type DescriptorIndex, makeIndex, withDependencies } from "./internal/descriptorIndex.js"

/**
 * An embedded file descriptor, as `protoc-gen-fiber-grpc` writes it: the
 * `file` export of a generated `x.descriptor.ts`. Its dependencies come along.
 *
 * @since 0.1.0
 */
export interface FileDescriptor {
  /** The .proto file's path, e.g. `"grpc/testing/test.proto"`. */
  readonly name: string
  /** The serialized `google.protobuf.FileDescriptorProto`, base64. */
  readonly descriptor: string
  /** The files it imports. */
  readonly dependencies: ReadonlyArray<FileDescriptor>
}

/** The descriptors of the services the library itself can serve. */
const builtIn: ReadonlyArray<FileDescriptor> = [healthProto, reflectionV1Proto, reflectionV1alphaProto]

const notFound = (message: string) => ({ errorResponse: { errorCode: GrpcError.Status.NOT_FOUND, errorMessage: message } })

/** The answer to one request, given the files already sent on this stream. */
const answer = (
  index: DescriptorIndex,
  services: ReadonlyArray<{ readonly fullName: string }>,
  request: ServerReflectionRequest,
  sent: Set<string>
): Omit<ServerReflectionResponse, "validHost" | "originalRequest"> => {
  const file = (name: string | undefined, what: string) =>
    name === undefined ? notFound(what) : { fileDescriptorResponse: { fileDescriptorProto: withDependencies(index, name, sent) } }
  if (request.fileByFilename !== undefined) {
    const name = request.fileByFilename
    return file(index.files.has(name) ? name : undefined, `file not found: ${name}`)
  }
  if (request.fileContainingSymbol !== undefined) {
    const symbol = request.fileContainingSymbol.replace(/^\./, "")
    return file(index.symbols.get(symbol), `symbol not found: ${symbol}`)
  }
  if (request.fileContainingExtension !== undefined) {
    const { containingType, extensionNumber } = request.fileContainingExtension
    const type = containingType.replace(/^\./, "")
    return file(index.extensions.get(`${type}:${extensionNumber}`), `extension not found: ${type} ${extensionNumber}`)
  }
  if (request.allExtensionNumbersOfType !== undefined) {
    const type = request.allExtensionNumbersOfType.replace(/^\./, "")
    return index.messages.has(type)
      ? { allExtensionNumbersResponse: { baseTypeName: type, extensionNumber: [...(index.extensionNumbers.get(type) ?? [])] } }
      : notFound(`type not found: ${type}`)
  }
  if (request.listServices !== undefined) {
    return { listServicesResponse: { service: services.map((s) => ({ name: s.fullName })) } }
  }
  return {
    errorResponse: { errorCode: GrpcError.Status.INVALID_ARGUMENT, errorMessage: "the request sets no message_request" }
  }
}

/**
 * Logs a warning, once per service name for this layer, for each listed
 * service whose descriptor was not given: clients see it listed but cannot
 * resolve it, which is otherwise silent.
 */
const warnUndescribed = (index: DescriptorIndex, warned: Set<string>, services: ReadonlyArray<{ readonly fullName: string }>) => {
  const missing = services.filter((s) => !index.symbols.has(s.fullName) && !warned.has(s.fullName))
  if (missing.length === 0) return Effect.void
  for (const s of missing) warned.add(s.fullName)
  return Effect.logWarning(
    `gRPC reflection lists ${missing.map((s) => s.fullName).join(", ")} without a descriptor: ` +
      "clients cannot resolve it. Pass its generated `file` (x.descriptor.js) to GrpcReflection.layer."
  )
}

/** The ServerReflectionInfo handler: one response per request, in order. */
const serverReflectionInfo = (index: DescriptorIndex, server: GrpcServer.GrpcServer["Service"]) => {
  const warned = new Set<string>()
  return (requests: Stream.Stream<ServerReflectionRequest, GrpcError.GrpcError>) =>
    Stream.suspend(() => {
      const sent = new Set<string>()
      return Stream.mapEffect(requests, (request) =>
        Effect.flatMap(server.services, (services) => {
          const response: ServerReflectionResponse = {
            validHost: request.host,
            originalRequest: request,
            ...answer(index, services, request, sent)
          }
          return request.listServices === undefined
            ? Effect.succeed(response)
            : Effect.as(warnUndescribed(index, warned, services), response)
        }))
    })
}

/**
 * Serves reflection (v1 and v1alpha) on the `GrpcServer` in context. `files`
 * are the descriptors of your services (their dependencies come along);
 * those of health and reflection are built in. A served service whose file
 * is missing is still listed, but lookups of its symbols answer `NOT_FOUND`,
 * and the first listing that includes it logs a warning naming it.
 *
 * @since 0.1.0
 */
export const layer = (files: ReadonlyArray<FileDescriptor>): Layer.Layer<never, never, GrpcServer.GrpcServer> =>
  Layer.unwrap(GrpcServer.GrpcServer.use((server) => {
    const index = makeIndex([...files, ...builtIn])
    const handler = serverReflectionInfo(index, server)
    return Effect.succeed(Layer.mergeAll(
      GrpcServer.serve(V1Definition, { serverReflectionInfo: handler }),
      // v1alpha's messages are v1's under another package name: same fields, same numbers.
      GrpcServer.serve(V1alphaDefinition, { serverReflectionInfo: handler })
    ))
  }))
