/**
 * Applying client middleware to one method (see GrpcMiddleware.ts). A client
 * made without middleware never reaches this file.
 *
 * Each run of a call's Effect or Stream gets its own `ClientCall` (a retried
 * Effect starts afresh): a copy of the caller's metadata that middleware may
 * add to, the trailers once the call ends, and message counters. The call
 * itself starts inside the middleware chain, in the calling fiber, so the
 * deadline and cancellation of a server call being handled still propagate.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Stream } from "effect"
import type { GrpcError } from "../../GrpcError.js"
import type { AnyClientMiddleware, CallKind, ClientCall, MethodInfo } from "../../GrpcMiddleware.js"
import { countMessages } from "../messageCount.js"
import type { CallOptions } from "./callOptions.js"

class ClientCallState implements ClientCall {
  readonly metadata: grpc.Metadata
  trailers: grpc.Metadata | undefined = undefined
  messagesSent = 0
  messagesReceived = 0
  constructor(readonly method: MethodInfo, readonly target: string, readonly options: CallOptions | undefined) {
    this.metadata = options?.metadata?.clone() ?? new grpc.Metadata()
  }
  /** The options the call itself is made with. */
  callOptions(): CallOptions {
    const onTrailers = this.options?.onTrailers
    return {
      ...this.options,
      metadata: this.metadata,
      onTrailers: (trailers) => {
        this.trailers = trailers
        onTrailers?.(trailers)
      }
    }
  }
}

type Method = (input: never, options?: CallOptions) => unknown

export const applyClientMiddleware = (
  method: Method,
  info: MethodInfo,
  target: string,
  chain: ReadonlyArray<AnyClientMiddleware>,
  context: Context.Context<never>
): Method => {
  const withServices = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.updateContext(effect, (current: Context.Context<never>) => Context.merge(context, current))
  const kind: CallKind = info.kind
  // Each kind's method was chosen by the definition's stream flags, so its
  // input and output are the ones cast to below.
  if (kind === "unary" || kind === "clientStreaming") {
    const run = method as (input: unknown, options?: CallOptions) => Effect.Effect<unknown, GrpcError>
    return ((input: unknown, options?: CallOptions) =>
      withServices(Effect.suspend(() => {
        const call = new ClientCallState(info, target, options)
        const request = kind === "unary"
          ? (call.messagesSent = 1, input)
          : countMessages(input as Stream.Stream<unknown>, call, "messagesSent")
        let effect = Effect.map(run(request, call.callOptions()), (response) => {
          call.messagesReceived = 1
          return response
        })
        for (let i = chain.length - 1; i >= 0; i--) effect = chain[i]!.effect(effect, call) as typeof effect
        return effect
      }))) as Method
  }
  const run = method as (input: unknown, options?: CallOptions) => Stream.Stream<unknown, GrpcError>
  return ((input: unknown, options?: CallOptions) =>
    Stream.unwrap(withServices(Effect.sync(() => {
      const call = new ClientCallState(info, target, options)
      const request = kind === "serverStreaming"
        ? (call.messagesSent = 1, input)
        : countMessages(input as Stream.Stream<unknown>, call, "messagesSent")
      let stream = countMessages(run(request, call.callOptions()), call, "messagesReceived")
      for (let i = chain.length - 1; i >= 0; i--) stream = chain[i]!.stream(stream, call) as typeof stream
      return Stream.updateContext(stream, (current: Context.Context<never>) => Context.merge(context, current))
    })))) as Method
}
