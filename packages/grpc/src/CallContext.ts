/**
 * What a handler knows about the call it is serving: request metadata, the
 * deadline, the peer and the method, and a way to send response headers and
 * set trailers.
 *
 * The adapter provides `CallContext` to every handler fiber and, through
 * Effect's context, to every fiber that handler forks. `GrpcClient` reads it to
 * link upstream calls to the call being served.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CallContext } from "@fiber-grpc/grpc"
 *
 * const whoAmI = Effect.gen(function*() {
 *   const ctx = yield* CallContext.CallContext
 *   const user = ctx.metadata.get("x-user")[0]
 *   yield* ctx.setTrailers(new CallContext.Metadata({}))
 *   return `${ctx.method} from ${ctx.peer} as ${String(user)}`
 * })
 * ```
 *
 * @since 0.1.0
 * @module
 */
import type * as grpc from "@grpc/grpc-js"
import { Context, Duration, Effect, Option } from "effect"
import { Metadata } from "./GrpcError.js"

export { Metadata }

/**
 * The surface every grpc-js server call shares (grpc-js does not export its
 * `ServerSurfaceCall` type, so it is restated structurally here).
 *
 * @since 0.1.0
 */
export interface ServerCall extends NodeJS.EventEmitter {
  /** True once the call was cancelled (or, since grpc-js 1.10, once it ended). */
  readonly cancelled: boolean
  /** The request metadata. */
  readonly metadata: grpc.Metadata
  /** The client's address. */
  getPeer(): string
  /** The method path, `"/package.Service/Method"`. */
  getPath(): string
  /** The call's deadline; `Infinity` when the client set none. */
  getDeadline(): grpc.Deadline
  /** Sends the response headers. */
  sendMetadata(responseMetadata: grpc.Metadata): void
}

/**
 * The service a handler yields to learn about its call.
 *
 * @since 0.1.0
 */
export class CallContext extends Context.Service<CallContext, {
  /** The method path, `"/package.Service/Method"`. */
  readonly method: string
  /** Request metadata (grpc-js has removed the transport headers such as `grpc-timeout`). `-bin` keys hold Buffers. */
  readonly metadata: grpc.Metadata
  /** The client's address, e.g. `"127.0.0.1:53122"`. */
  readonly peer: string
  /** When the client's deadline expires; `None` when the client set none. */
  readonly deadline: Option.Option<Date>
  /**
   * The time left before the deadline, measured on the wall clock (HTTP/2
   * deadlines are real time, whatever `Clock` the handler runs with).
   */
  readonly timeRemaining: Effect.Effect<Option.Option<Duration.Duration>>
  /** Sends response headers now. Only the first call has an effect; without it grpc-js sends empty headers with the first message or the status. */
  readonly sendHeaders: (headers: grpc.Metadata) => Effect.Effect<void>
  /** Adds trailers to the final status, whether the handler succeeds or fails. */
  readonly setTrailers: (trailers: grpc.Metadata) => Effect.Effect<void>
  /**
   * The underlying grpc-js call, for what this API does not cover (auth
   * context, flow-control counters). Request messages come only through the
   * handler's argument: grpc-js hands the adapter each request's bytes and
   * the adapter decodes them, so a unary or server-streaming call's
   * `request` property holds the bytes, and reading a streaming call as a
   * Readable gets nothing (the adapter takes messages as grpc-js delivers
   * them, through its `push`).
   */
  readonly call: ServerCall
}>()("@fiber-grpc/grpc/CallContext") {}

/** @since 0.1.0 */
export type CallContextShape = CallContext["Service"]

/**
 * The implementation the adapter builds for each call. The method and peer
 * are captured when the call starts: grpc-js reads the peer from the socket,
 * and answers `"unknown"` once a cancelled call's connection is gone, which
 * is when a log line needs it most. Everything else is read from the call
 * when accessed, so a call that never looks at its context pays almost nothing.
 *
 * @internal
 */
export class ServerCallContext implements CallContextShape {
  /** Trailers accumulated by `setTrailers`; sent with the final status. */
  trailers: grpc.Metadata | undefined = undefined
  /** Messages read and written; counted only when middleware is applied (see GrpcMiddleware). */
  messagesReceived = 0
  messagesSent = 0
  readonly method: string
  readonly peer: string
  constructor(readonly call: ServerCall) {
    this.method = call.getPath()
    this.peer = call.getPeer()
  }

  get metadata(): grpc.Metadata {
    return this.call.metadata
  }
  get deadline(): Option.Option<Date> {
    const deadline = this.call.getDeadline()
    const ms = deadline instanceof Date ? deadline.getTime() : deadline
    return Number.isFinite(ms) ? Option.some(new Date(ms)) : Option.none()
  }
  get timeRemaining(): Effect.Effect<Option.Option<Duration.Duration>> {
    return Effect.sync(() =>
      Option.map(this.deadline, (d) => Duration.millis(Math.max(0, d.getTime() - Date.now())))
    )
  }
  // Bound on first use (so `const { setTrailers } = ctx` works) instead of
  // allocating two closures for every call.
  private sendHeadersFn: ((headers: grpc.Metadata) => Effect.Effect<void>) | undefined
  private setTrailersFn: ((trailers: grpc.Metadata) => Effect.Effect<void>) | undefined
  get sendHeaders(): (headers: grpc.Metadata) => Effect.Effect<void> {
    return this.sendHeadersFn ??= (headers) => Effect.sync(() => this.call.sendMetadata(headers))
  }
  get setTrailers(): (trailers: grpc.Metadata) => Effect.Effect<void> {
    return this.setTrailersFn ??= (trailers) =>
      Effect.sync(() => {
        if (this.trailers === undefined) this.trailers = trailers.clone()
        else this.trailers.merge(trailers)
      })
  }
}
