/**
 * Middleware around every call of a service, on the server and on the client.
 *
 * **Server middleware** wraps the Effect that serves a call, for all four call
 * kinds (for streaming responses, the Effect writes the whole Stream). It sees
 * the call's `CallContext` (metadata, method, peer, deadline), may fail the
 * call with a `GrpcError`, run code around the handler (finalizers included)
 * and **provide services** to the handler, like Effect's `RpcMiddleware`:
 *
 * - a handler that requires `CurrentUser` compiles into a runnable server only
 *   where a middleware that provides `CurrentUser` is applied: `serve` removes
 *   the provided service from the layer's requirements, and adds what the
 *   middleware itself requires;
 * - middleware runs **before the request message is decoded**: a service with
 *   middleware receives raw bytes from grpc-js and decodes them inside the
 *   middleware chain, so an auth middleware that rejects a call never parses
 *   its body. (A call's bytes still arrive: grpc-js invokes a unary or
 *   server-streaming handler only once the request message is in.) A chain
 *   made only of `decodeFirst` middleware (tracing, metrics, log
 *   annotations) lets grpc-js decode as usual, which is cheaper.
 *
 * Apply it per service with `GrpcServer.serve(definition, handlers, { middleware: [...] })`,
 * or to every service of a server with `GrpcServer.layer({ ..., middleware: [...] })`.
 *
 * **Order.** Middleware listed first is outermost: it sees the call first and
 * the outcome last. Server-wide middleware wraps per-service middleware. So
 * with `layer({ middleware: [tracing, metrics] })` and
 * `serve(def, handlers, { middleware: [auth] })`, a call runs
 * tracing → metrics → auth → decode → handler, and a call that auth rejects
 * still has its span and its duration recorded.
 *
 * **Cost.** A service with no middleware runs exactly as without this module:
 * grpc-js decodes its requests, and no wrapper is allocated per call.
 *
 * **Client middleware** wraps each call of a client made with
 * `GrpcClient.make(definition, { middleware: [...] })`: it can add request
 * metadata (for example a bearer token from a service that refreshes it),
 * observe the status and trailers, and wrap the call's Effect (unary and
 * client streaming) or Stream (server streaming and bidi). Deadline and cancel
 * propagation from the server call being handled still apply: middleware runs
 * in the calling fiber and the call starts inside it.
 *
 * @example
 * ```ts
 * import { Context, Effect } from "effect"
 * import { GrpcError, GrpcMiddleware, GrpcServer } from "@fiber-grpc/grpc"
 *
 * class CurrentUser extends Context.Service<CurrentUser, { readonly name: string }>()("CurrentUser") {}
 *
 * const auth = GrpcMiddleware.provide(CurrentUser, (call) => {
 *   const token = call.metadata.get("authorization")[0]
 *   return token === "Bearer secret"
 *     ? Effect.succeed({ name: "alice" })
 *     : Effect.fail(GrpcError.make(GrpcError.Status.UNAUTHENTICATED, "bad token"))
 * })
 *
 * const Greeter = GrpcServer.serve(GreeterDefinition, {
 *   sayHello: () => CurrentUser.use((user) => Effect.succeed({ message: `Hello, ${user.name}` }))
 * }, { middleware: [auth] })
 * ```
 *
 * @since 0.1.0
 * @module
 */
import type * as grpc from "@grpc/grpc-js"
import { type Context, Effect, Stream } from "effect"
import type { CallContext, CallContextShape } from "./CallContext.js"
import type { CallOptions } from "./internal/client/callOptions.js"
import { clientCode, clientStreamCode, splitAddress } from "./internal/callStatus.js"
import type { GrpcError } from "./GrpcError.js"

/**
 * The kind of a call: `"unary"`, `"serverStreaming"`, `"clientStreaming"` or `"bidi"`.
 *
 * @since 0.1.0
 */
export type CallKind = "unary" | "serverStreaming" | "clientStreaming" | "bidi"

/**
 * The method a call is for, computed once per method when the service is
 * registered (or the client is made).
 *
 * @since 0.1.0
 */
export interface MethodInfo {
  /** `"/package.Service/Method"`, as on the wire. */
  readonly path: string
  /** `"package.Service"`. */
  readonly service: string
  /** `"Method"`. */
  readonly name: string
  /** The call kind. */
  readonly kind: CallKind
}

/**
 * What server middleware sees of a call: its `CallContext`, plus the number
 * of messages of its streaming sides received and sent so far. A single
 * request or response is not counted (it stays 0). (Not to be confused with
 * `CallContext.ServerCall`, the grpc-js call object.)
 *
 * @since 0.1.0
 */
export interface ServerCallInfo extends CallContextShape {
  /** Request messages the handler has read (client-streaming and bidi calls). */
  readonly messagesReceived: number
  /** Response messages written (server-streaming and bidi calls). */
  readonly messagesSent: number
}

/**
 * The success value of a wrapped call, kept opaque: middleware passes it on
 * but cannot make one up.
 *
 * @since 0.1.0
 */
export interface Handled {
  /** Brand only. */
  readonly _: unique symbol
}

/**
 * A server middleware that provides `Provides` to the handlers it wraps and
 * requires `R` for each call.
 *
 * @since 0.1.0
 */
export interface ServerMiddleware<Provides = never, R = never> {
  /**
   * `true` when this middleware never needs to run before the request is
   * decoded (it does not reject calls by their metadata): if every middleware
   * on a method says so, grpc-js decodes requests as usual, which is
   * cheaper, and the middleware runs after decoding, so it cannot reject a
   * call before its request is parsed. Tracing, metrics and `annotateLogs`
   * set it; `make({ decodeFirst: true })` sets it on your own. Default: the
   * chain runs before decoding.
   */
  readonly decodeFirst?: boolean | undefined
  /**
   * Wraps one call. `effect` runs the rest of the chain: the middleware after
   * this one, the decoding of the request, and the handler.
   */
  readonly wrap: (
    effect: Effect.Effect<Handled, GrpcError, Provides | CallContext>,
    call: ServerCallInfo,
    method: MethodInfo
  ) => Effect.Effect<Handled, GrpcError, R | CallContext>
}

/**
 * Any server middleware.
 *
 * @since 0.1.0
 */
export type AnyServerMiddleware = ServerMiddleware<never, unknown>

/**
 * The services a server middleware provides.
 *
 * @since 0.1.0
 */
export type Provides<M> = M extends ServerMiddleware<infer P, infer _R> ? P : never

/**
 * The services a server middleware requires for each call.
 *
 * @since 0.1.0
 */
export type Requires<M> = M extends ServerMiddleware<infer _P, infer R> ? R : never

/**
 * The requirements of handlers that need `R`, once the middleware `M` (a
 * tuple, outermost first) wraps them: each middleware, from the innermost
 * out, removes what it provides and adds what it requires.
 *
 * @since 0.1.0
 */
export type Apply<M extends ReadonlyArray<AnyServerMiddleware>, R> = M extends
  readonly [...infer Init extends ReadonlyArray<AnyServerMiddleware>, infer Last] ?
  Apply<Init, Exclude<R, Provides<Last>> | Requires<Last>>
  : R

/**
 * A server middleware from a wrapping function. `Provides` is given
 * explicitly; what the middleware requires is inferred.
 *
 * By default the middleware runs before the request message is decoded, so
 * it can reject a call without parsing its body. `{ decodeFirst: true }` is
 * for middleware that never rejects calls by their metadata (observability:
 * timing, logging): it runs after grpc-js has decoded the request, which is
 * cheaper, but it cannot reject a call before decoding (see
 * `ServerMiddleware.decodeFirst`).
 *
 * @example
 * ```ts
 * const timing = GrpcMiddleware.make({ decodeFirst: true })((effect, call) =>
 *   Effect.onExit(effect, (exit) => Effect.log(`${call.method} ended: ${exit._tag}`))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const make = <Provides = never>(options?: { readonly decodeFirst?: boolean | undefined }) =>
<R = never>(
  wrap: (
    effect: Effect.Effect<Handled, GrpcError, Provides | CallContext>,
    call: ServerCallInfo,
    method: MethodInfo
  ) => Effect.Effect<Handled, GrpcError, R>
): ServerMiddleware<Provides, Exclude<R, CallContext>> =>
  // The wrapped Effect may require CallContext, which the adapter always
  // provides; it is dropped from the middleware's own requirements.
  (options?.decodeFirst === true ? { decodeFirst: true, wrap } : { wrap }) as ServerMiddleware<
    Provides,
    Exclude<R, CallContext>
  >

/**
 * A server middleware that computes a service from the call (for example the
 * authenticated user from its metadata) and provides it to the handler. If
 * `build` fails, the call ends with that `GrpcError` and the handler (and the
 * decoding of its request) never runs.
 *
 * @since 0.1.0
 */
export const provide = <I, S, R = never>(
  key: Context.Key<I, S>,
  build: (call: ServerCallInfo, method: MethodInfo) => Effect.Effect<S, GrpcError, R>
): ServerMiddleware<I, Exclude<R, CallContext>> =>
  make<I>()((effect, call, method) =>
    // suspend: a `build` that throws is a defect of the call, not of grpc-js.
    Effect.flatMap(Effect.suspend(() => build(call, method)), (service) => Effect.provideService(effect, key, service))
  )

/**
 * A server middleware that adds the method (`rpc.method`, e.g.
 * `"grpc.examples.echo.Echo/UnaryEcho"`) and the peer (`client.address` and
 * `client.port`) as annotations to every log line of the handler and the
 * fibers it forks.
 *
 * @since 0.1.0
 */
export const annotateLogs: ServerMiddleware = {
  decodeFirst: true,
  wrap: (effect, call, method) => {
    const peer = splitAddress(call.peer)
    return Effect.annotateLogs(effect, {
      "rpc.method": `${method.service}/${method.name}`,
      "client.address": peer.host,
      ...(peer.port === undefined ? {} : { "client.port": peer.port })
    })
  }
}

/**
 * What client middleware sees of a call, before and after it runs.
 *
 * @since 0.1.0
 */
export interface ClientCall {
  /** The method. */
  readonly method: MethodInfo
  /** The channel's target, e.g. `"127.0.0.1:50051"`. */
  readonly target: string
  /**
   * The request metadata that will be sent: a copy of the caller's, which
   * middleware may add to until the wrapped Effect or Stream starts the call.
   */
  readonly metadata: grpc.Metadata
  /** The options the caller passed. */
  readonly options: CallOptions | undefined
  /** The trailers, once the call has ended with a status from the server. */
  readonly trailers: grpc.Metadata | undefined
  /** Request messages written so far. */
  readonly messagesSent: number
  /** Response messages received so far. */
  readonly messagesReceived: number
}

/**
 * A client middleware that requires `R` for each call. `effect` wraps unary
 * and client-streaming calls, `stream` wraps server-streaming and bidi ones.
 *
 * @since 0.1.0
 */
export interface ClientMiddleware<R = never> {
  /** Wraps a unary or client-streaming call. */
  readonly effect: <A>(effect: Effect.Effect<A, GrpcError>, call: ClientCall) => Effect.Effect<A, GrpcError, R>
  /** Wraps a server-streaming or bidi call: the Stream runs the call. */
  readonly stream: <A>(stream: Stream.Stream<A, GrpcError>, call: ClientCall) => Stream.Stream<A, GrpcError, R>
}

/**
 * Any client middleware.
 *
 * @since 0.1.0
 */
export type AnyClientMiddleware = ClientMiddleware<unknown>

/**
 * The services a list of client middleware requires.
 *
 * @since 0.1.0
 */
export type ClientRequires<M extends ReadonlyArray<AnyClientMiddleware>> = M[number] extends infer X
  ? X extends ClientMiddleware<infer R> ? R : never
  : never

/**
 * A client middleware from its two wrapping functions.
 *
 * @since 0.1.0
 */
export const client = <R = never>(middleware: ClientMiddleware<R>): ClientMiddleware<R> => middleware

/**
 * A client middleware that runs `before` in the calling fiber just before each
 * call starts, typically to add metadata:
 *
 * ```ts
 * const bearer = GrpcMiddleware.clientMetadata((call) =>
 *   Effect.map(TokenSource.use((s) => s.current), (token) => call.metadata.set("authorization", `Bearer ${token}`))
 * )
 * ```
 *
 * If `before` fails, the call is not started and fails with that error.
 *
 * @since 0.1.0
 */
export const clientMetadata = <R = never>(
  before: (call: ClientCall) => Effect.Effect<void, GrpcError, R>
): ClientMiddleware<R> => ({
  effect: (effect, call) => Effect.andThen(before(call), effect),
  stream: (stream, call) => Stream.unwrap(Effect.as(before(call), stream))
})

/**
 * A client middleware that observes how each call ended: `onEnd` receives the
 * call (with its trailers) and the status code (`0` for OK; `CANCELLED` for a
 * call the caller interrupted or a response Stream its consumer stopped early).
 *
 * @since 0.1.0
 */
export const clientObserve = <R = never>(
  onEnd: (call: ClientCall, code: GrpcError["code"]) => Effect.Effect<void, never, R>
): ClientMiddleware<R> => ({
  effect: (effect, call) => Effect.onExit(effect, (exit) => onEnd(call, clientCode(exit))),
  // A Stream the consumer stopped early ends without error but was cancelled
  // on the wire: CANCELLED, as in GrpcTracing and GrpcMetrics.
  stream: (stream, call) => Stream.onExit(stream, (exit) => onEnd(call, clientStreamCode(exit, call.trailers)))
})
