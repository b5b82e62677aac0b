/**
 * Distributed tracing for gRPC calls, on Effect's own `Tracer`: a span of
 * kind `server` for every call served and of kind `client` for every call
 * made, linked across processes with W3C Trace Context (`traceparent` and
 * `tracestate` metadata). It is plain middleware (see GrpcMiddleware):
 *
 * ```ts
 * GrpcServer.layer({ port: 50051, middleware: [GrpcTracing.server] })
 * GrpcClient.make(EchoDefinition, { middleware: [GrpcTracing.client] })
 * ```
 *
 * Spans go to whatever tracer the program runs with: `@effect/opentelemetry`
 * (`NodeSdk.layer`), Effect's OTLP exporter (`effect/observability`), or any
 * other tracer layer. With Effect's default native tracer, which exports
 * nothing, a call is traced only when it continues a trace (an incoming
 * `traceparent`, or a current span), so that a relay without a tracer still
 * forwards its callers' traces; other calls cost next to nothing.
 *
 * - A call made inside a handler is a child of the handler's server span, so
 *   client → server 1 → server 2 is one trace.
 * - A span ends as soon as its call does. The span of a cancelled call ends
 *   when its fiber is interrupted, with Effect's interrupted exit (with
 *   `@effect/opentelemetry`: the attribute `effect.fiber.interrupted`) and
 *   `rpc.response.status_code` = `"CANCELLED"`; a server span whose deadline
 *   passed ends as a `DEADLINE_EXCEEDED` error.
 * - Attributes follow the OpenTelemetry RPC semantic conventions **v1.39**
 *   (`docs/rpc/grpc.md`): span name `package.Service/Method`,
 *   `rpc.system.name` = `"grpc"`, `rpc.method` = `"package.Service/Method"`,
 *   `rpc.response.status_code` = the status name (`"OK"`,
 *   `"DEADLINE_EXCEEDED"`...), `error.type` = the status name when the span
 *   is an error, `server.address`/`server.port` on client spans and
 *   `network.peer.address`/`network.peer.port` on server spans. A server
 *   span of a retried or hedged attempt also has
 *   `rpc.grpc.request.metadata.grpc-previous-rpc-attempts` (e.g. `["1"]`).
 *   A client span covers the whole call: grpc-js runs the attempts below
 *   anything a middleware can see.
 * - Server spans are errors only for the codes the conventions call server
 *   errors (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
 *   DATA_LOSS); client spans for every status other than OK.
 *
 * @since 0.1.0
 * @module
 */
import type * as grpc from "@grpc/grpc-js"
import { Clock, Context, Effect, Exit, type Fiber, Option, Stream, Tracer } from "effect"
import * as GrpcError from "./GrpcError.js"
import * as GrpcMiddleware from "./GrpcMiddleware.js"
import { clientCode, clientStreamCode, ForcingShutdown, isError, serverCode, splitAddress } from "./internal/callStatus.js"

/**
 * The `tracestate` received with a call, carried in the annotations of the
 * remote parent span so that calls made while handling it forward it.
 *
 * @since 0.1.0
 */
export class TraceState extends Context.Service<TraceState, string>()("@fiber-grpc/grpc/GrpcTracing/TraceState") {}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/
const zeroTrace = "0".repeat(32)
const zeroSpan = "0".repeat(16)

/**
 * Reads W3C Trace Context from request metadata: the remote parent span, with
 * the `tracestate` in its annotations, or `undefined` when `traceparent` is
 * missing or invalid (the call then starts a new trace).
 *
 * @since 0.1.0
 */
export const extract = (metadata: grpc.Metadata): Tracer.ExternalSpan | undefined => {
  const header = metadata.get("traceparent")[0]
  if (typeof header !== "string") return undefined
  const match = traceparentPattern.exec(header.trim())
  if (match === null) return undefined
  const [, version, traceId, spanId, flags] = match as unknown as [string, string, string, string, string]
  // Version ff is forbidden; version 00 has exactly four fields.
  if (version === "ff" || (version === "00" && header.trim().length !== 55)) return undefined
  if (traceId === zeroTrace || spanId === zeroSpan) return undefined
  const state = metadata.get("tracestate").filter((v): v is string => typeof v === "string").join(",")
  return {
    _tag: "ExternalSpan",
    traceId,
    spanId,
    sampled: (parseInt(flags, 16) & 1) === 1,
    annotations: state === "" ? Context.empty() : Context.make(TraceState, state)
  }
}

/**
 * Writes W3C Trace Context for `span` into outgoing metadata: `traceparent`,
 * and the `tracestate` received by the nearest remote ancestor, if any.
 *
 * @since 0.1.0
 */
export const inject = (span: Tracer.AnySpan, metadata: grpc.Metadata): void => {
  metadata.set("traceparent", `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`)
  const state = traceStateOf(span)
  if (state !== undefined) metadata.set("tracestate", state)
}

const traceStateOf = (span: Tracer.AnySpan): string | undefined => {
  let current: Tracer.AnySpan | undefined = span
  while (current !== undefined) {
    if (current._tag === "ExternalSpan") return Option.getOrUndefined(Context.getOption(current.annotations, TraceState))
    current = Option.getOrUndefined(current.parent)
  }
  return undefined
}

/**
 * Ends `span` for a call that ended with `code`: the status attributes, then
 * the exit the tracer sees. An interrupted call (cancelled by its client, or
 * by the caller of a client call) ends with its interrupted exit, which
 * tracers mark as such (`effect.fiber.interrupted` with
 * `@effect/opentelemetry`); a call whose deadline passed ends as a
 * `DEADLINE_EXCEEDED` failure. Otherwise a code that is an error for this kind
 * of span ends it with the call's failure, and any other code (an expected
 * NOT_FOUND on a server span, say) as a success.
 */
const endSpan = (
  span: Tracer.Span,
  exit: Exit.Exit<unknown, unknown>,
  code: GrpcError.Status,
  kind: "server" | "client",
  // The clock the span started with (read from the fiber once, not per step).
  clock: Clock.Clock
): Effect.Effect<void> =>
  Effect.sync(() => {
    const name = GrpcError.statusName(code)
    span.attribute("rpc.response.status_code", name)
    const error = isError(code, kind)
    if (error) span.attribute("error.type", name)
    const interrupted = Exit.isFailure(exit) && Exit.hasInterrupts(exit)
    span.end(
      clock.currentTimeNanosUnsafe(),
      code === GrpcError.Status.DEADLINE_EXCEEDED && interrupted
        ? Exit.fail(GrpcError.make(code, "Deadline exceeded"))
        : interrupted
        ? exit
        : error
        // A stream its consumer stopped early succeeds, yet was cancelled.
        ? Exit.isSuccess(exit) ? Exit.fail(GrpcError.make(code, "Call cancelled")) : exit
        : Exit.void
    )
  })

const previousAttemptsKey = "grpc-previous-rpc-attempts"
const previousAttemptsAttribute = `rpc.grpc.request.metadata.${previousAttemptsKey}`

const methodName = (method: GrpcMiddleware.MethodInfo) => `${method.service}/${method.name}`

/**
 * `withParentSpan` otherwise captures a stack trace (`new Error()`) for every
 * span, which was the largest single cost of a traced call: the call site
 * would always be this module anyway.
 */
const noStackTrace = { captureStackTrace: false } as const

/**
 * Whether this fiber has nothing to trace: Effect's default native tracer
 * (which exports nothing), and no span to continue. Effect's own advice for
 * `nativeTracer` is to skip work only a backend could observe, so in that
 * case no span is made at all and tracing costs next to nothing.
 */
const nothingToTrace = (fiber: Fiber.Fiber<unknown, unknown>, remoteParent: Tracer.ExternalSpan | undefined): boolean =>
  remoteParent === undefined &&
  fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer &&
  Option.isNone(Context.getOption(fiber.context, Tracer.ParentSpan))

/**
 * Server middleware: a `server` span around every call, child of the
 * caller's span when the request carries `traceparent`. Handlers (and the
 * client calls they make) run with it as their parent span. With Effect's
 * default native tracer and no incoming `traceparent`, no span is made.
 *
 * @since 0.1.0
 */
export const server: GrpcMiddleware.ServerMiddleware = {
  decodeFirst: true,
  wrap: (effect, call, method) => {
    const parent = extract(call.metadata)
    return Effect.withFiber((fiber) => {
      if (nothingToTrace(fiber, parent)) return effect
      const peer = splitAddress(call.peer)
      const rpcMethod = methodName(method)
      // A retried or hedged attempt says how many came before it (gRFC A6);
      // recorded as the semconv request-metadata attribute for that key.
      const previousAttempts = call.metadata.get(previousAttemptsKey)
      return Effect.flatMap(
        Effect.makeSpan(rpcMethod, {
          kind: "server",
          // Without a remote parent the call starts a new trace.
          ...(parent === undefined ? { root: true } : { parent }),
          attributes: {
            "rpc.system.name": "grpc",
            "rpc.method": rpcMethod,
            "network.peer.address": peer.host,
            ...(peer.port === undefined ? {} : { "network.peer.port": peer.port }),
            ...(previousAttempts.length === 0 ? {} : { [previousAttemptsAttribute]: previousAttempts.map(String) })
          }
        }),
        (span) =>
          Effect.onExit(
            Effect.withParentSpan(effect, span, noStackTrace),
            (exit) => endSpan(span, exit, serverCode(exit, call.deadline, fiber.getRef(ForcingShutdown)()), "server", fiber.getRef(Clock.Clock))
          )
      )
    })
  }
}

const clientSpan = (call: GrpcMiddleware.ClientCall) => {
  const rpcMethod = methodName(call.method)
  const server = splitAddress(call.target)
  return Effect.map(
    Effect.makeSpan(rpcMethod, {
      kind: "client",
      attributes: {
        "rpc.system.name": "grpc",
        "rpc.method": rpcMethod,
        "server.address": server.host,
        ...(server.port === undefined ? {} : { "server.port": server.port })
      }
    }),
    (span) => {
      inject(span, call.metadata)
      return span
    }
  )
}

/**
 * Client middleware: a `client` span around every call (for streams, until
 * the Stream ends), child of the current span (the server span when the call
 * is made inside a handler), sent to the server as `traceparent` along with
 * the `tracestate` received, if any. With Effect's default native tracer and
 * no current span, no span is made and nothing is sent.
 *
 * @since 0.1.0
 */
export const client: GrpcMiddleware.ClientMiddleware = GrpcMiddleware.client({
  effect: (effect, call) =>
    Effect.withFiber((fiber) =>
      nothingToTrace(fiber, undefined) ? effect : Effect.flatMap(clientSpan(call), (span) =>
        Effect.onExit(
          Effect.withParentSpan(effect, span, noStackTrace),
          (exit) => endSpan(span, exit, clientCode(exit), "client", fiber.getRef(Clock.Clock))
        ))
    ),
  stream: (stream, call) =>
    Stream.unwrap(Effect.withFiber((fiber) =>
      nothingToTrace(fiber, undefined) ? Effect.succeed(stream) : Effect.map(clientSpan(call), (span) =>
        Stream.onExit(
          stream,
          (exit) => endSpan(span, exit, clientStreamCode(exit, call.trailers), "client", fiber.getRef(Clock.Clock))
        ))
    ))
})
