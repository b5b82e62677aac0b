/**
 * Test peers: our interop server on 127.0.0.1:0, and a plain @grpc/grpc-js
 * TestService with no framework code, so that a bug shared by our client and
 * our server cannot hide.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import {
  type SimpleRequest,
  type SimpleResponse,
  type StreamingInputCallRequest,
  type StreamingInputCallResponse,
  type StreamingOutputCallRequest,
  type StreamingOutputCallResponse
} from "@fiber-grpc/protos/grpc/testing/messages"
import { TestServiceService } from "@fiber-grpc/protos/grpc/testing/test"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import { certPath } from "../src/files.js"
import { layer } from "../src/server.js"

/** Our server, bound on loopback for the test's Scope. */
export const startServer = (credentials?: grpc.ServerCredentials) =>
  Effect.map(
    Layer.build(layer({ host: "127.0.0.1", port: 0, credentials, gracePeriod: "1 second" })),
    (context) => Context.get(context, GrpcServer.GrpcServer)
  )

export const testCa = () => fs.readFileSync(certPath("ca.pem"))

const INITIAL = "x-grpc-test-echo-initial"
const TRAILING = "x-grpc-test-echo-trailing-bin"

const payload = (size: number) => ({ type: 0, body: Buffer.alloc(size) })

/** The response headers and trailers a plain grpc-js server echoes, per the spec. */
const echoed = (metadata: grpc.Metadata) => {
  const headers = new grpc.Metadata()
  const trailers = new grpc.Metadata()
  const initial = metadata.get(INITIAL)
  const trailing = metadata.get(TRAILING)
  if (initial.length > 0) headers.set(INITIAL, initial[0]!)
  if (trailing.length > 0) trailers.set(TRAILING, trailing[0]!)
  return { headers, trailers }
}

const simpleResponse = (size: number): SimpleResponse => ({
  payload: payload(size),
  username: "",
  oauthScope: "",
  serverId: "",
  grpclbRouteType: 0,
  hostname: ""
})

/**
 * A plain @grpc/grpc-js TestService written from the spec (interval_us is
 * not needed by the client cases and is left out).
 */
export const rawServer = Effect.acquireRelease(
  Effect.callback<{ port: number; server: grpc.Server }>((resume) => {
    const server = new grpc.Server()
    server.addService(TestServiceService, {
      emptyCall: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, {}),
      unaryCall: (call: grpc.ServerUnaryCall<SimpleRequest, SimpleResponse>, callback: grpc.sendUnaryData<SimpleResponse>) => {
        const { headers, trailers } = echoed(call.metadata)
        call.sendMetadata(headers)
        const status = call.request.responseStatus
        if (status !== undefined && status.code !== 0) {
          callback({ code: status.code, details: status.message, metadata: trailers })
        } else {
          callback(null, simpleResponse(call.request.responseSize), trailers)
        }
      },
      cacheableUnaryCall: (_call: grpc.ServerUnaryCall<SimpleRequest, SimpleResponse>, callback: grpc.sendUnaryData<SimpleResponse>) =>
        callback(null, simpleResponse(0)),
      streamingOutputCall: (call: grpc.ServerWritableStream<StreamingOutputCallRequest, StreamingOutputCallResponse>) => {
        for (const p of call.request.responseParameters) call.write({ payload: payload(p.size) })
        call.end()
      },
      streamingInputCall: (
        call: grpc.ServerReadableStream<StreamingInputCallRequest, StreamingInputCallResponse>,
        callback: grpc.sendUnaryData<StreamingInputCallResponse>
      ) => {
        let sum = 0
        call.on("data", (r: StreamingInputCallRequest) => (sum += r.payload?.body.length ?? 0))
        call.on("end", () => callback(null, { aggregatedPayloadSize: sum }))
        call.on("error", () => {})
      },
      fullDuplexCall: (call: grpc.ServerDuplexStream<StreamingOutputCallRequest, StreamingOutputCallResponse>) => {
        const { headers, trailers } = echoed(call.metadata)
        call.sendMetadata(headers)
        let done = false
        call.on("data", (r: StreamingOutputCallRequest) => {
          if (done) return
          const status = r.responseStatus
          if (status !== undefined && status.code !== 0) {
            done = true
            call.emit("error", { code: status.code, details: status.message, metadata: trailers })
            return
          }
          for (const p of r.responseParameters) call.write({ payload: payload(p.size) })
        })
        call.on("end", () => {
          if (!done) call.end(trailers)
        })
        call.on("error", () => {})
      },
      halfDuplexCall: (call: grpc.ServerDuplexStream<StreamingOutputCallRequest, StreamingOutputCallResponse>) => {
        const all: Array<StreamingOutputCallRequest> = []
        call.on("data", (r: StreamingOutputCallRequest) => all.push(r))
        call.on("end", () => {
          for (const r of all) for (const p of r.responseParameters) call.write({ payload: payload(p.size) })
          call.end()
        })
      },
      unimplementedCall: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback({ code: grpc.status.UNIMPLEMENTED })
    })
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      resume(error ? Effect.die(error) : Effect.succeed({ port, server })))
  }),
  ({ server }) => Effect.sync(() => server.forceShutdown())
)
