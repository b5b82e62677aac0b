/**
 * The Echo contract of `pnpm bench:server`, as the framework's and plain
 * grpc-js's handlers (no codec or load-tool imports, so that other servers,
 * such as the hostile suite's, can serve the same contract):
 * - UnaryEcho echoes the request;
 * - ServerStreamingEcho with message "N" sends N responses whose message is
 *   64 bytes, as fast as flow control allows;
 * - ClientStreamingEcho returns the last message received;
 * - BidirectionalStreamingEcho echoes each message.
 */
import type { CallContext } from "@fiber-grpc/grpc"
import type { ServiceHandlers } from "@fiber-grpc/grpc/ServiceDefinition"
import type { EchoDefinition, EchoRequest, EchoResponse, EchoServer } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect, Stream } from "effect"

export const streamedResponse: EchoResponse = { message: "x".repeat(64) }

export const countOf = (message: string): number => {
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
