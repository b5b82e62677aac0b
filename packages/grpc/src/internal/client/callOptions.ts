/**
 * Per-call options, and the automatic link to the server call being handled.
 *
 * A client call made from a handler fiber, or from any fiber it forked, finds
 * that handler's `CallContext` in its own fiber context. Its deadline becomes
 * the earlier of its own and the incoming call's, and goes out on the wire as
 * `grpc-timeout`. Cancellation needs no wiring at all: the call runs in a
 * child fiber of the handler, so interrupting the handler interrupts the call,
 * whose finalizer cancels it on the wire.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Context, Duration, Effect, type Fiber, Option } from "effect"
import { CallContext } from "../../CallContext.js"
import * as GrpcError from "../../GrpcError.js"

/** Options every client method accepts. */
export interface CallOptions {
  /** Request metadata. */
  readonly metadata?: grpc.Metadata | undefined
  /** Absolute deadline (wall clock). */
  readonly deadline?: Date | undefined
  /** Relative deadline from the start of the call (wall clock). */
  readonly timeout?: Duration.Input | undefined
  /**
   * `false` detaches this call from the server call being handled: it keeps
   * its own deadline only. (Cancellation follows the fiber that runs the call;
   * fork it outside the handler, e.g. with `Effect.forkDetach`, to outlive it.)
   */
  readonly propagate?: boolean | undefined
  /** Called with the response headers when they arrive. */
  readonly onHeaders?: ((headers: grpc.Metadata) => void) | undefined
  /** Called with the trailers when the call ends, whatever its status. */
  readonly onTrailers?: ((trailers: grpc.Metadata) => void) | undefined
  /**
   * Compresses this call's request messages, when it differs from the
   * channel's `compression`. grpc-js fixes compression per channel, so the
   * call goes through a second connection to the same target, opened on
   * first use with the channel's options and closed with the channel.
   */
  readonly compression?: Compression | undefined
}

/**
 * A message compression algorithm of grpc-js.
 *
 * @since 0.1.0
 */
export type Compression = "identity" | "deflate" | "gzip"

/**
 * Whether client calls in this region follow the server call being handled.
 * Defaults to true; see `GrpcClient.withoutPropagation`.
 */
export const Propagation = Context.Reference<boolean>("@fiber-grpc/grpc/GrpcClient/Propagation", {
  defaultValue: () => true
})

/** What grpc-js needs to start a call. */
export interface Prepared {
  readonly metadata: grpc.Metadata
  readonly options: grpc.CallOptions
}

const noOptions: grpc.CallOptions = {}

/**
 * Channels whose Scope has closed. grpc-js throws `Error: Channel has been
 * shut down` from any call started on a closed channel, which would surface
 * as a defect; a call on one of these fails with UNAVAILABLE instead.
 */
export const closedChannels = new WeakSet<grpc.Client>()

export const channelClosed = Effect.fail(GrpcError.make(GrpcError.Status.UNAVAILABLE, "channel closed"))

/**
 * Resolves metadata and the effective deadline for a call starting now in
 * `fiber`; undefined when the channel is closed.
 */
export const prepareIn = (
  fiber: Fiber.Fiber<unknown, unknown>,
  channel: grpc.Client,
  options: CallOptions | undefined
): Prepared | undefined => {
  if (closedChannels.has(channel)) return undefined
  let deadline = options?.deadline?.getTime() ?? Infinity
  if (options?.timeout !== undefined) {
    deadline = Math.min(deadline, Date.now() + Duration.toMillis(Duration.fromInputUnsafe(options.timeout)))
  }
  if (options?.propagate !== false && fiber.getRef(Propagation)) {
    const parent = Context.getOption(fiber.context, CallContext)
    if (Option.isSome(parent) && Option.isSome(parent.value.deadline)) {
      deadline = Math.min(deadline, parent.value.deadline.value.getTime())
    }
  }
  return {
    metadata: options?.metadata ?? new grpc.Metadata(),
    options: Number.isFinite(deadline) ? { deadline } : noOptions
  }
}

/** `prepareIn` as an Effect, in the calling fiber; fails with UNAVAILABLE when the channel is closed. */
export const prepare = (channel: grpc.Client, options: CallOptions | undefined): Effect.Effect<Prepared, GrpcError.GrpcError> =>
  Effect.withFiber((fiber) => {
    const prepared = prepareIn(fiber, channel, options)
    return prepared === undefined ? channelClosed : Effect.succeed(prepared)
  })

/** Attaches the header/trailer callbacks of `options` to a started call. */
export const observe = (call: NodeJS.EventEmitter, options: CallOptions | undefined): void => {
  if (options?.onHeaders) call.on("metadata", options.onHeaders)
  const onTrailers = options?.onTrailers
  if (onTrailers) call.on("status", (status: grpc.StatusObject) => onTrailers(status.metadata))
}
