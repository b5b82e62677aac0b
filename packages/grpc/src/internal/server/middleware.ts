/**
 * Applying server middleware to one method (see GrpcMiddleware.ts).
 *
 * grpc-js hands every method's requests over as bytes (decodeRequest.ts).
 * With middleware, the handler is wrapped to decode them inside the
 * handler's Effect, which runs inside the middleware chain: a middleware that
 * fails the call (auth) does so before any request message is parsed. When
 * every middleware of the chain is `decodeFirst` (tracing, metrics, log
 * annotations), the call kind's adapter decodes as it does without
 * middleware, which costs less. Either way the wrapper counts the messages of
 * streaming requests and responses, for metrics. Methods without middleware
 * never reach this file.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect, Stream } from "effect"
import type { CallContext, ServerCallContext } from "../../CallContext.js"
import * as GrpcError from "../../GrpcError.js"
import type { AnyServerMiddleware, Handled } from "../../GrpcMiddleware.js"
import { countMessages } from "../messageCount.js"
import { kindOf, methodInfo } from "../methodInfo.js"
import { passBytes } from "../codec.js"
import { decodeRequest, undecodable, undecodableRequest } from "./decodeRequest.js"
import type { HandlerRuntime } from "./runHandler.js"

type AnyHandler = (input: never, ctx: ServerCallContext) => unknown

export interface WithMiddleware {
  readonly runtime: HandlerRuntime
  readonly handler: unknown
  /** How the call kind's adapter decodes requests before the handler: `passBytes` when the handler decodes them. */
  readonly decode: (bytes: Buffer) => unknown
}

export const applyMiddleware = (
  runtime: HandlerRuntime,
  method: grpc.MethodDefinition<unknown, unknown>,
  handler: unknown,
  chain: ReadonlyArray<AnyServerMiddleware>
): WithMiddleware => {
  const kind = kindOf(method)
  const info = methodInfo(method.path, kind)
  const deserialize = method.requestDeserialize
  // Decode inside the chain unless every middleware asked to run after decoding.
  const lazy = chain.some((middleware) => middleware.decodeFirst !== true)
  // Lazy: the handler's program is built before the middleware runs.
  const decode = (bytes: Buffer): Effect.Effect<unknown, GrpcError.GrpcError> =>
    Effect.suspend(() => {
      const request = decodeRequest(deserialize, bytes)
      return request === undecodable ? Effect.fail(undecodableRequest()) : Effect.succeed(request)
    })
  const countSent = <A, E, R>(stream: Stream.Stream<A, E, R>, ctx: ServerCallContext) =>
    countMessages(stream, ctx, "messagesSent")
  const countReceived = <A, E, R>(stream: Stream.Stream<A, E, R>, ctx: ServerCallContext) =>
    countMessages(stream, ctx, "messagesReceived")
  // The handler's type was checked against the definition by `serve`; its
  // request type is the one `deserialize` produces.
  const h = handler as (input: unknown, ctx: ServerCallContext) => never
  const handle = (input: unknown, ctx: ServerCallContext) => h(input, ctx) as Effect.Effect<unknown, GrpcError.GrpcError>
  const handleStream = (input: unknown, ctx: ServerCallContext) =>
    h(input, ctx) as Stream.Stream<unknown, GrpcError.GrpcError>
  const decodeAll = (requests: Stream.Stream<Buffer, GrpcError.GrpcError>, ctx: ServerCallContext) =>
    Stream.mapEffect(countReceived(requests, ctx), decode)
  const wrapped: AnyHandler = lazy
    ? {
      unary: (bytes: Buffer, ctx: ServerCallContext) => Effect.flatMap(decode(bytes), (request) => handle(request, ctx)),
      serverStreaming: (bytes: Buffer, ctx: ServerCallContext) =>
        countSent(Stream.unwrap(Effect.map(decode(bytes), (request) => handleStream(request, ctx))), ctx),
      clientStreaming: (requests: Stream.Stream<Buffer, GrpcError.GrpcError>, ctx: ServerCallContext) =>
        handle(decodeAll(requests, ctx), ctx),
      bidi: (requests: Stream.Stream<Buffer, GrpcError.GrpcError>, ctx: ServerCallContext) =>
        countSent(handleStream(decodeAll(requests, ctx), ctx), ctx)
    }[kind]
    // Every middleware runs after decoding: grpc-js decodes as usual, and a
    // unary handler is left as it is.
    : {
      unary: h,
      serverStreaming: (request: unknown, ctx: ServerCallContext) => countSent(handleStream(request, ctx), ctx),
      clientStreaming: (requests: Stream.Stream<unknown, GrpcError.GrpcError>, ctx: ServerCallContext) =>
        handle(countReceived(requests, ctx), ctx),
      bidi: (requests: Stream.Stream<unknown, GrpcError.GrpcError>, ctx: ServerCallContext) =>
        countSent(handleStream(countReceived(requests, ctx), ctx), ctx)
    }[kind]

  // Outermost first: the first middleware's wrap is applied last.
  const wrap = <A>(program: Effect.Effect<A, GrpcError.GrpcError, CallContext>, ctx: ServerCallContext) => {
    // The chain is typed over an opaque success value, which passes through
    // it unchanged; what the middleware requires besides CallContext was
    // checked by `serve` and is in the context `runFork` runs with.
    let wrapped = program as unknown as Effect.Effect<Handled, GrpcError.GrpcError, unknown>
    for (let i = chain.length - 1; i >= 0; i--) {
      wrapped = chain[i]!.wrap(wrapped as Effect.Effect<Handled, GrpcError.GrpcError, CallContext>, ctx, info)
    }
    return wrapped as Effect.Effect<A, GrpcError.GrpcError, CallContext>
  }
  return {
    runtime: { ...runtime, wrap },
    handler: wrapped,
    decode: lazy ? passBytes : deserialize
  }
}
