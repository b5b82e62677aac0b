/**
 * The one path from a grpc-js call to a fiber, shared by the four call kinds.
 *
 * 1. The handler's Effect is wrapped in the method's middleware, if it has
 *    any (`runtime.wrap`, see middleware.ts), and forked synchronously with
 *    `CallContext` in the fiber's own context (no `provideService` layer per
 *    call). A fiber that has not finished by then is tracked in the server's
 *    FiberSet (a synchronous handler never needs to be).
 * 2. While that fiber runs, the call's `'cancelled'` event interrupts it.
 *    grpc-js fires `'cancelled'` for a client cancel, an expired deadline and a
 *    dropped connection; the fiber's finalizers run and the fibers it forked
 *    (upstream calls included) are interrupted with it.
 * 3. When the fiber exits, the listener is removed first and then the exit is
 *    turned into the call's status. Since grpc-js 1.10 `'cancelled'` also
 *    fires after every call that completed normally (grpc/grpc-node#2771);
 *    by then the listener is gone, so a finished call is never treated as a
 *    cancelled one.
 *
 * Each call kind builds its `start` and picks its `end` once per method, so
 * that a call allocates no closure of its own beyond what it needs while it
 * runs asynchronously: its context, its fiber (and Effect's `runForkWith`
 * closure), and only then the cancellation listener and two observers (the
 * FiberSet's and the one below).
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Cause, Effect, type Exit, type Fiber, Option } from "effect"
import { CallContext, type ServerCall, ServerCallContext } from "../../CallContext.js"
import { GrpcError } from "../../GrpcError.js"
import { interruptedCode } from "../callStatus.js"
import { withRetryPushback } from "./retryPushback.js"

/** What the server gives each registered service to run its calls. */
export interface HandlerRuntime {
  /** Forks a fiber into the server's FiberSet, with the services of the layer that registered the service. */
  readonly runFork: <A, E extends GrpcError>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /**
   * Forks a call's handler fiber, with those services and `CallContext`;
   * tracked by the server's FiberSet while it runs (interrupted at once when
   * the server is closed).
   */
  readonly forkCall: <A>(program: Effect.Effect<A, GrpcError, CallContext>, ctx: ServerCallContext) => Fiber.Fiber<A, GrpcError>
  /** True once shutdown has passed its grace period and interrupts the remaining handlers. */
  readonly isForcingShutdown: () => boolean
  /**
   * The middleware applied to this method, composed into one function (see
   * GrpcMiddleware and internal/server/middleware.ts); absent when there is none.
   */
  readonly wrap?: (<A>(program: Effect.Effect<A, GrpcError, CallContext>, ctx: ServerCallContext) => Effect.Effect<A, GrpcError, CallContext>) | undefined
}

/** The status a call ends with, in grpc-js's shape. */
export interface CallStatus {
  readonly code: grpc.status
  readonly details: string
  readonly metadata: grpc.Metadata
}

/** Turns a handler's exit into the call's end; `sink` is what it answers through. */
export type End<A, S> = (runtime: HandlerRuntime, exit: Exit.Exit<A, GrpcError>, ctx: ServerCallContext, sink: S) => void

export const runHandler = <C extends ServerCall, A, S>(
  runtime: HandlerRuntime,
  call: C,
  start: (call: C, ctx: ServerCallContext) => Effect.Effect<A, GrpcError, CallContext>,
  end: End<A, S>,
  sink: S
): void => {
  const ctx = new ServerCallContext(call)
  let program: Effect.Effect<A, GrpcError, CallContext>
  try {
    program = start(call, ctx)
    if (runtime.wrap !== undefined) program = runtime.wrap(program, ctx)
  } catch (defect) {
    // A handler, or a middleware's `wrap`, that throws before returning its
    // Effect is a defect like any other (INTERNAL, logged).
    program = Effect.die(defect)
  }
  const fiber = runtime.forkCall(program, ctx)
  // A handler that completed synchronously (e.g. `Effect.succeed`) needs no
  // cancellation listener at all.
  const done = fiber.pollUnsafe()
  if (done !== undefined) return end(runtime, done, ctx, sink)
  // bind, not an arrow: no closure literal (and no tsx `__name` call) per call.
  const interrupt = fiber.interruptUnsafe.bind(fiber)
  call.on("cancelled", interrupt)
  // The call may have been cancelled before the handler started (grpc-js
  // delivers the request of a unary call asynchronously).
  if (call.cancelled) interrupt()
  fiber.addObserver((exit) => {
    call.off("cancelled", interrupt)
    end(runtime, exit, ctx, sink)
  })
}

/**
 * Trailers set with `CallContext.setTrailers`, merged with those of a
 * `GrpcError`; `undefined` (grpc-js then sends none) when there are none, so
 * a plain successful call allocates nothing here.
 */
export const trailersOf = (ctx: ServerCallContext, extra?: grpc.Metadata): grpc.Metadata | undefined => {
  if (extra === undefined) return ctx.trailers
  if (ctx.trailers === undefined) return extra
  ctx.trailers.merge(extra)
  return ctx.trailers
}

const failureTrailers = (ctx: ServerCallContext, extra?: grpc.Metadata): grpc.Metadata =>
  trailersOf(ctx, extra) ?? new grpc.Metadata()

/**
 * The status for a handler that did not succeed:
 * - a `GrpcError` is sent as it is;
 * - a defect is logged on the server (with the handler's logger) and becomes
 *   `INTERNAL` with a generic message, so no stack or message leaks;
 * - an interruption becomes `CANCELLED`, `UNAVAILABLE` when shutdown
 *   interrupted it, or `DEADLINE_EXCEEDED` past the deadline (grpc-js drops
 *   it when the client has already gone or the call already ended).
 */
export const failureStatus = (
  runtime: HandlerRuntime,
  cause: Cause.Cause<GrpcError>,
  ctx: ServerCallContext
): CallStatus => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const metadata = failureTrailers(ctx, withRetryPushback(error.value, ctx.trailers))
    return { code: error.value.code, details: error.value.message, metadata }
  }
  if (Cause.hasDies(cause)) {
    runtime.runFork(Effect.logError(`gRPC handler ${ctx.method} died; the client receives INTERNAL`, cause))
    return { code: grpc.status.INTERNAL, details: "Internal server error", metadata: failureTrailers(ctx) }
  }
  // The same code telemetry records (internal/callStatus.ts).
  const code = interruptedCode(ctx.deadline, runtime.isForcingShutdown())
  return { code, details: interruptedDetails[code] ?? "Call cancelled", metadata: failureTrailers(ctx) }
}

const interruptedDetails: Partial<Record<grpc.status, string>> = {
  [grpc.status.DEADLINE_EXCEEDED]: "Deadline exceeded",
  [grpc.status.UNAVAILABLE]: "Server is shutting down"
}

/** Ends a call answered through grpc-js's callback: unary and client streaming. */
export const answer = <Res>(
  runtime: HandlerRuntime,
  exit: Exit.Exit<Res, GrpcError>,
  ctx: ServerCallContext,
  callback: grpc.sendUnaryData<Res>
): void => {
  if (exit._tag === "Success") callback(null, exit.value, trailersOf(ctx))
  else callback(failureStatus(runtime, exit.cause, ctx))
}

/** Ends a call whose responses were written to it: server streaming and bidi. */
export const endStream = (
  runtime: HandlerRuntime,
  exit: Exit.Exit<void, GrpcError>,
  ctx: ServerCallContext,
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>
): void => {
  if (exit._tag === "Success") call.end(trailersOf(ctx))
  // grpc-js's documented way to end a writable server call with a status.
  else call.emit("error", failureStatus(runtime, exit.cause, ctx))
}
