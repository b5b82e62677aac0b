/**
 * The benchmark's Echo service on each server under test: the framework
 * (`frameworkEcho`), plain grpc-js (`rawEcho`, served with ts-proto's codecs
 * or with @grpc/proto-loader's) and nice-grpc (`niceEcho`, with the same
 * ts-proto definitions as the framework).
 *
 * Contract (also that of `pnpm bench:server`):
 * - UnaryEcho echoes the request;
 * - ServerStreamingEcho with message "N" sends N responses whose message is
 *   64 bytes, as fast as flow control allows;
 * - ClientStreamingEcho returns the last message received;
 * - BidirectionalStreamingEcho echoes each message.
 */

import type { CallContext } from "@fiber-grpc/grpc"
import type { ServiceHandlers } from "@fiber-grpc/grpc/ServiceDefinition"
import type { EchoClient, EchoDefinition, EchoRequest, EchoResponse, EchoServer } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect, Stream } from "effect"
import type { ServiceImplementation } from "nice-grpc"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const streamedResponse: EchoResponse = { message: "x".repeat(64) }

const countOf = (message: string): number => {
  const n = Number(message)
  return Number.isInteger(n) && n > 0 ? n : 0
}

export const frameworkEcho: ServiceHandlers<typeof EchoDefinition, CallContext.CallContext> = {
  unaryEcho: (request) => Effect.succeed({ message: request.message }),
  serverStreamingEcho: (request) => {
    const n = countOf(request.message)
    return n === 0 ? Stream.empty : Stream.map(Stream.range(1, n), () => streamedResponse)
  },
  clientStreamingEcho: (requests) =>
    Effect.map(Stream.runFold(requests, () => "", (_, r) => r.message), (message) => ({ message })),
  bidirectionalStreamingEcho: (requests) => Stream.map(requests, (r) => ({ message: r.message }))
}

export const rawEcho: EchoServer = {
  unaryEcho: (call, callback) => callback(null, { message: call.request.message }),
  serverStreamingEcho: (call) => {
    const n = countOf(call.request.message)
    let sent = 0
    let stopped = false
    call.on("cancelled", () => {
      stopped = true
    })
    const pump = () => {
      while (!stopped && sent < n) {
        sent++
        if (!call.write(streamedResponse)) {
          call.once("drain", pump)
          return
        }
      }
      if (!stopped) call.end()
    }
    pump()
  },
  clientStreamingEcho: (call, callback) => {
    let last: EchoRequest | undefined
    call.on("data", (m: EchoRequest) => {
      last = m
    })
    call.on("end", () => callback(null, { message: last?.message ?? "" }))
    call.on("error", () => {})
  },
  bidirectionalStreamingEcho: (call) => {
    call.on("data", (m: EchoRequest) => {
      if (!call.write({ message: m.message })) {
        call.pause()
        call.once("drain", () => call.resume())
      }
    })
    call.on("end", () => call.end())
    call.on("error", () => {})
  }
}



/**
 * The same Echo service on nice-grpc, with the same ts-proto definitions
 * (nice-grpc encodes through ts-proto's `encode(message).finish()`).
 */
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
