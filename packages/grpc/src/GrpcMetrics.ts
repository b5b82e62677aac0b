/**
 * Call metrics with Effect's `Metric`, named as in the OpenTelemetry RPC
 * semantic conventions (v1.39): the duration of every call per method and
 * status, on the server and the client, and for streaming calls the number
 * of messages received and sent. It is plain middleware (see GrpcMiddleware):
 *
 * ```ts
 * GrpcServer.layer({ port: 50051, middleware: [GrpcMetrics.server] })
 * GrpcClient.make(EchoDefinition, { middleware: [GrpcMetrics.client] })
 * ```
 *
 * | metric                          | instrument          | attributes |
 * | ------------------------------- | ------------------- | ---------- |
 * | `rpc.server.call.duration`      | histogram, seconds  | `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `error.type` |
 * | `rpc.client.call.duration`      | histogram, seconds  | the same, plus `server.address`, `server.port` |
 * | `rpc.server.requests_per_rpc`   | histogram, messages | `rpc.system.name`, `rpc.method` (client-streaming and bidi calls) |
 * | `rpc.server.responses_per_rpc`  | histogram, messages | the same (server-streaming and bidi calls) |
 * | `rpc.client.requests_per_rpc`   | histogram, messages | the same, on the client |
 * | `rpc.client.responses_per_rpc`  | histogram, messages | the same, on the client |
 *
 * Durations are wall-clock time from the start of the call (the middleware)
 * to its status, whatever `Clock` the handler runs with. Export them like any
 * Effect metric, e.g. with `@effect/opentelemetry`'s `NodeSdk.layer({ metricReader })`
 * or `effect/observability`'s `OtlpMetrics`/`PrometheusMetrics`.
 *
 * @since 0.1.0
 * @module
 */
import { Effect, Exit, Metric, Stream } from "effect"
import * as GrpcError from "./GrpcError.js"
import * as GrpcMiddleware from "./GrpcMiddleware.js"
import { clientCode, clientStreamCode, ForcingShutdown, isError, serverCode, splitAddress } from "./internal/callStatus.js"

/** Bucket boundaries the conventions advise for `rpc.*.call.duration`, in seconds. */
const durationBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
const messageBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536]

/**
 * `rpc.server.call.duration`: the duration of calls served, in seconds.
 *
 * @since 0.1.0
 */
export const serverDuration = Metric.histogram("rpc.server.call.duration", {
  description: "Duration of incoming gRPC calls, in seconds",
  boundaries: durationBoundaries
})

/**
 * `rpc.client.call.duration`: the duration of calls made, in seconds.
 *
 * @since 0.1.0
 */
export const clientDuration = Metric.histogram("rpc.client.call.duration", {
  description: "Duration of outgoing gRPC calls, in seconds",
  boundaries: durationBoundaries
})

/**
 * `rpc.server.requests_per_rpc`: request messages received per streaming call.
 *
 * @since 0.1.0
 */
export const serverRequestsPerRpc = Metric.histogram("rpc.server.requests_per_rpc", {
  description: "Request messages received per streaming gRPC call",
  boundaries: messageBoundaries
})

/**
 * `rpc.server.responses_per_rpc`: response messages sent per streaming call.
 *
 * @since 0.1.0
 */
export const serverResponsesPerRpc = Metric.histogram("rpc.server.responses_per_rpc", {
  description: "Response messages sent per streaming gRPC call",
  boundaries: messageBoundaries
})

/**
 * `rpc.client.requests_per_rpc`: request messages sent per streaming call.
 *
 * @since 0.1.0
 */
export const clientRequestsPerRpc = Metric.histogram("rpc.client.requests_per_rpc", {
  description: "Request messages sent per streaming gRPC call",
  boundaries: messageBoundaries
})

/**
 * `rpc.client.responses_per_rpc`: response messages received per streaming call.
 *
 * @since 0.1.0
 */
export const clientResponsesPerRpc = Metric.histogram("rpc.client.responses_per_rpc", {
  description: "Response messages received per streaming gRPC call",
  boundaries: messageBoundaries
})

const statusAttributes = (method: GrpcMiddleware.MethodInfo, code: GrpcError.Status, kind: "server" | "client") => {
  const name = GrpcError.statusName(code)
  const attributes: Record<string, string> = {
    "rpc.system.name": "grpc",
    "rpc.method": `${method.service}/${method.name}`,
    "rpc.response.status_code": name
  }
  if (isError(code, kind)) attributes["error.type"] = name
  return attributes
}

const record = (
  kind: "server" | "client",
  method: GrpcMiddleware.MethodInfo,
  code: GrpcError.Status,
  start: number,
  received: number,
  sent: number,
  extra?: Record<string, string>
): Effect.Effect<void> => {
  const seconds = (performance.now() - start) / 1000
  const attributes = extra === undefined ? statusAttributes(method, code, kind) : { ...statusAttributes(method, code, kind), ...extra }
  const duration = Metric.update(Metric.withAttributes(kind === "server" ? serverDuration : clientDuration, attributes), seconds)
  if (method.kind === "unary") return duration
  const methodAttributes = { "rpc.system.name": "grpc", "rpc.method": attributes["rpc.method"]! }
  const [requests, responses, requestCount, responseCount] = kind === "server"
    ? [serverRequestsPerRpc, serverResponsesPerRpc, received, sent] as const
    : [clientRequestsPerRpc, clientResponsesPerRpc, sent, received] as const
  return Effect.andThen(
    duration,
    Effect.andThen(
      method.kind === "serverStreaming" ? Effect.void : Metric.update(Metric.withAttributes(requests, methodAttributes), requestCount),
      method.kind === "clientStreaming" ? Effect.void : Metric.update(Metric.withAttributes(responses, methodAttributes), responseCount)
    )
  )
}

/**
 * Server middleware recording `rpc.server.call.duration` and, for streaming
 * calls, `rpc.server.requests_per_rpc` / `rpc.server.responses_per_rpc`.
 *
 * @since 0.1.0
 */
export const server: GrpcMiddleware.ServerMiddleware = {
  decodeFirst: true,
  wrap: (effect, call, method) =>
    Effect.withFiber((fiber) => {
      const start = performance.now()
      return Effect.onExit(effect, (exit) =>
        record(
          "server",
          method,
          serverCode(exit, call.deadline, fiber.getRef(ForcingShutdown)()),
          start,
          call.messagesReceived,
          call.messagesSent
        ))
    })
}

const onClientExit = (call: GrpcMiddleware.ClientCall, start: number, stream: boolean) => (exit: Exit.Exit<unknown, unknown>) => {
  const server = splitAddress(call.target)
  return record("client", call.method, stream ? clientStreamCode(exit, call.trailers) : clientCode(exit), start, call.messagesReceived, call.messagesSent, {
    "server.address": server.host,
    // A string, unlike the int of semconv and GrpcTracing: Effect's metric
    // attributes are string-valued (Metric.AttributeSet).
    ...(server.port === undefined ? {} : { "server.port": String(server.port) })
  })
}

/**
 * Client middleware recording `rpc.client.call.duration` and, for streaming
 * calls, `rpc.client.requests_per_rpc` / `rpc.client.responses_per_rpc`.
 *
 * @since 0.1.0
 */
export const client: GrpcMiddleware.ClientMiddleware = GrpcMiddleware.client({
  effect: (effect, call) => Effect.suspend(() => Effect.onExit(effect, onClientExit(call, performance.now(), false))),
  stream: (stream, call) => Stream.unwrap(Effect.sync(() => Stream.onExit(stream, onClientExit(call, performance.now(), true))))
})
