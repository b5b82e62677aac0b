/**
 * Test helpers: a real GrpcServer on 127.0.0.1:0 serving Echo, and a plain
 * @grpc/grpc-js client (no framework code) to talk to it over HTTP/2.
 */
import * as grpc from "@grpc/grpc-js"
import {
  EchoClient,
  EchoDefinition,
  type EchoRequest,
  type EchoResponse,
  type EchoServer,
  EchoService
} from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Effect, Layer } from "effect"
import * as net from "node:net"
import { type CallContext, GrpcServer } from "../src/index.js"
import type { ServiceHandlers } from "../src/ServiceDefinition.js"

export type EchoHandlers = ServiceHandlers<typeof EchoDefinition, CallContext.CallContext>

const unimplemented = () => {
  throw new Error("not used in this test")
}

/** Handlers for the methods a test does not use. */
export const echoDefaults: EchoHandlers = {
  unaryEcho: unimplemented,
  serverStreamingEcho: unimplemented,
  clientStreamingEcho: unimplemented,
  bidirectionalStreamingEcho: unimplemented
}

/** Starts a GrpcServer serving Echo in the current Scope and returns it with a raw grpc-js client. */
export const startEcho = (handlers: Partial<EchoHandlers>, options?: Partial<GrpcServer.Options>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      GrpcServer.serve(EchoDefinition, { ...echoDefaults, ...handlers }).pipe(
        Layer.provideMerge(GrpcServer.layer({ ...GrpcServer.testOptions, ...options }))
      )
    )
    const server = Context.get(context, GrpcServer.GrpcServer)
    const client = yield* rawClient(`127.0.0.1:${server.port}`)
    return { server, client }
  })

export const rawClient = (address: string, options?: grpc.ChannelOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => new EchoClient(address, grpc.credentials.createInsecure(), options)),
    (client) => Effect.sync(() => client.close())
  )

/** What a raw grpc-js client saw at the end of a call. */
export interface Observed {
  readonly code: grpc.status
  readonly details: string
  readonly headers: grpc.Metadata | undefined
  readonly trailers: grpc.Metadata
}

/** A unary call through the raw client; resolves with the response (if any) and the final status. */
export const unaryCall = (
  client: EchoClient,
  request: EchoRequest,
  options: { metadata?: grpc.Metadata; deadline?: Date; onCall?: (call: grpc.ClientUnaryCall) => void } = {}
) =>
  Effect.callback<{ response: EchoResponse | undefined } & Observed>((resume) => {
    let headers: grpc.Metadata | undefined
    let response: EchoResponse | undefined
    const call = client.unaryEcho(
      request,
      options.metadata ?? new grpc.Metadata(),
      options.deadline ? { deadline: options.deadline } : {},
      (_error, value) => {
        response = value
      }
    )
    call.on("metadata", (m) => (headers = m))
    call.on("status", (status) =>
      resume(Effect.succeed({ response, code: status.code, details: status.details, headers, trailers: status.metadata })))
    options.onCall?.(call)
  })

/** Reads a raw client's response stream to its end. */
export const collect = <A>(call: grpc.ClientReadableStream<A> | grpc.ClientDuplexStream<unknown, A>) =>
  Effect.callback<{ messages: Array<A> } & Observed>((resume) => {
    const messages: Array<A> = []
    let headers: grpc.Metadata | undefined
    call.on("metadata", (m) => (headers = m))
    call.on("data", (m: A) => messages.push(m))
    call.on("error", () => {})
    call.on("status", (status) =>
      resume(Effect.succeed({ messages, code: status.code, details: status.details, headers, trailers: status.metadata })))
  })

/** The final status of a client-streaming call made with a callback. */
export const clientStreamingCall = (
  client: EchoClient,
  write: (call: grpc.ClientWritableStream<EchoRequest>) => void,
  options: { deadline?: Date } = {}
) =>
  Effect.callback<{ response: EchoResponse | undefined } & Observed>((resume) => {
    let response: EchoResponse | undefined
    let headers: grpc.Metadata | undefined
    const call = client.clientStreamingEcho(new grpc.Metadata(), options.deadline ? { deadline: options.deadline } : {}, (_e, v) => {
      response = v
    })
    call.on("metadata", (m) => (headers = m))
    call.on("status", (status) =>
      resume(Effect.succeed({ response, code: status.code, details: status.details, headers, trailers: status.metadata })))
    write(call)
  })

/**
 * Pipes `inbound` both ways through a new connection to `targetPort`; either
 * side's end or error ends both. Returns the connection to the target.
 */
export const relay = (inbound: net.Socket, targetPort: number, sockets: Set<net.Socket>): net.Socket => {
  const outbound = net.connect(targetPort, "127.0.0.1")
  sockets.add(inbound).add(outbound)
  inbound.pipe(outbound).pipe(inbound)
  inbound.on("error", () => outbound.destroy())
  outbound.on("error", () => inbound.destroy())
  inbound.on("close", () => outbound.destroy())
  outbound.on("close", () => inbound.destroy())
  return outbound
}

/**
 * A TCP relay between the client and the server whose connections the test
 * can cut, to drop a client's connection without the client cancelling.
 */
export const tcpProxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.callback<{ port: number; cutAll: () => void; close: () => void }>((resume) => {
      const sockets = new Set<net.Socket>()
      const proxy = net.createServer((inbound) => relay(inbound, targetPort, sockets))
      proxy.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          port: (proxy.address() as net.AddressInfo).port,
          cutAll: () => sockets.forEach((s) => s.destroy()),
          close: () => {
            sockets.forEach((s) => s.destroy())
            proxy.close()
          }
        })))
    }),
    (proxy) => Effect.sync(() => proxy.close())
  )

/**
 * A port with no gRPC server behind it until `open(targetPort)`: while shut it
 * accepts each TCP connection and drops it at once (the client's connection
 * attempt fails); once open it relays to the target. It holds its port all
 * along: a port found free, released and bound again later can be taken in
 * between by any other socket on the machine.
 */
export const gate = Effect.acquireRelease(
  Effect.callback<{ port: number; open: (targetPort: number) => void; close: () => void }>((resume) => {
    let target: number | undefined
    const sockets = new Set<net.Socket>()
    const server = net.createServer((inbound) => target === undefined ? inbound.destroy() : relay(inbound, target, sockets))
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({
        port: (server.address() as net.AddressInfo).port,
        open: (targetPort: number) => {
          target = targetPort
        },
        close: () => {
          sockets.forEach((s) => s.destroy())
          server.close()
        }
      })))
  }),
  (g) => Effect.sync(() => g.close())
)

/**
 * A plain @grpc/grpc-js Echo server, no framework code, for tests where the
 * framework's client must be checked against a peer we did not write.
 */
export const rawServer = (implementation: Partial<EchoServer>) => {
  const missing = (_call: unknown, callback?: grpc.sendUnaryData<unknown>) =>
    callback?.({ code: grpc.status.UNIMPLEMENTED })
  return grpcServer(EchoService, {
    unaryEcho: missing,
    serverStreamingEcho: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) =>
      call.emit("error", { code: grpc.status.UNIMPLEMENTED }),
    clientStreamingEcho: missing,
    bidirectionalStreamingEcho: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) =>
      call.emit("error", { code: grpc.status.UNIMPLEMENTED }),
    ...implementation
  })
}

/** A plain @grpc/grpc-js server for any service definition, on an ephemeral port, shut down with its scope. */
export const grpcServer = (service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) =>
  Effect.acquireRelease(
    Effect.callback<{ port: number; server: grpc.Server }>((resume) => {
      const server = new grpc.Server()
      server.addService(service, implementation)
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
        resume(error ? Effect.die(error) : Effect.succeed({ port, server })))
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown())
  )
