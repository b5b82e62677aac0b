/**
 * The benchmark's Echo service on each server under test: the framework
 * (`frameworkEcho`), plain grpc-js (`rawEcho`, served with ts-proto's codecs
 * or with @grpc/proto-loader's) and nice-grpc (`niceEcho`, with the same
 * ts-proto definitions as the framework).
 *
 * The contract (also that of `pnpm bench:server`) is in echoHandlers.ts.
 */

import type { EchoClient, EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import type { ServiceImplementation } from "nice-grpc"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { countOf, streamedResponse } from "./echoHandlers.js"

export { countOf, frameworkEcho, rawEcho, streamedResponse } from "./echoHandlers.js"

export const niceEcho: ServiceImplementation<typeof EchoDefinition> = {
  unaryEcho: async (request) => ({ message: request.message }),
  async *serverStreamingEcho(request) {
    const n = countOf(request.message)
    for (let i = 0; i < n; i++) yield streamedResponse
  },
  clientStreamingEcho: async (requests) => {
    let message = ""
    for await (const r of requests) message = r.message
    return { message }
  },
  async *bidirectionalStreamingEcho(requests) {
    for await (const r of requests) yield { message: r.message }
  }
}

/** Where the .proto files are, for @grpc/proto-loader. */
export const protosDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../protos")

/** The Echo client constructor and service as grpc.io's Node quickstart loads them: @grpc/proto-loader (protobufjs). */
export const protoLoaderEcho = () => {
  const definition = protoLoader.loadSync("grpc/examples/echo/echo.proto", {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [protosDir]
  })
  // loadPackageDefinition's result is untyped (keyed by package path); the
  // Echo client it builds has the same methods as ts-proto's EchoClient.
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { examples: { echo: { Echo: typeof EchoClient & { service: grpc.ServiceDefinition } } } }
  }
  return pkg.grpc.examples.echo.Echo
}
