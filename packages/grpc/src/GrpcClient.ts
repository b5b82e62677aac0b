/**
 * Typed gRPC clients whose calls are Effects and Streams.
 *
 * - Interrupting the fiber that runs a call, a Stream consumer that stops
 *   early, or a failing request Stream cancels the call on the wire
 *   (`RST_STREAM CANCEL`).
 * - A call made while a server call is being handled (in the handler fiber or
 *   any fiber it forked) follows that call: its deadline is the earlier of its
 *   own and the incoming one, and it is cancelled when the incoming call is,
 *   because it is interrupted with the handler. Nothing is passed by hand;
 *   opt out with `withoutPropagation` or `{ propagate: false }`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { GrpcClient } from "@fiber-grpc/grpc"
 * import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
 *
 * const program = Effect.gen(function*() {
 *   const echo = yield* GrpcClient.make(EchoDefinition)
 *   const reply = yield* echo.unaryEcho({ message: "hi" }, { timeout: "1 second" })
 * }).pipe(Effect.provide(GrpcClient.layerChannel("127.0.0.1:50051")))
 * ```
 *
 * @since 0.1.0
 * @module
 */
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Layer, type Scope, Stream } from "effect"
import { type GrpcError, make as makeGrpcError, Status } from "./GrpcError.js"
import { bidiStreamingCall } from "./internal/client/bidiStreamingCall.js"
import { type CallOptions, closedChannels, type Compression, Propagation } from "./internal/client/callOptions.js"
import { flushPendingCancels } from "./internal/client/cancel.js"
import { clientStreamingCall } from "./internal/client/clientStreamingCall.js"
import { applyClientMiddleware } from "./internal/client/middleware.js"
import { kindOf, methodInfo } from "./internal/methodInfo.js"
import type * as GrpcMiddleware from "./GrpcMiddleware.js"
import type { MethodCodec } from "./internal/client/codec.js"
import { serverStreamingCall } from "./internal/client/serverStreamingCall.js"
import { unaryCall } from "./internal/client/unaryCall.js"
import { compile as compileServiceConfig, type WaitForReady } from "./internal/client/serviceConfig.js"
import * as ServiceConfig from "./ServiceConfig.js"
import { type MethodKind, type RequestOf, type ResponseOf, type ServiceDefinition, toGrpcJs } from "./ServiceDefinition.js"

export type { CallOptions, Compression }

/**
 * One client method, by call kind.
 *
 * | kind             | method                                                          |
 * | ---------------- | --------------------------------------------------------------- |
 * | unary            | `(request, options?) => Effect<Response, GrpcError>`             |
 * | server-streaming | `(request, options?) => Stream<Response, GrpcError>`             |
 * | client-streaming | `(requests: Stream<Request, E, R>, options?) => Effect<Response, GrpcError \| E, R>` |
 * | bidi             | `(requests: Stream<Request, E, R>, options?) => Stream<Response, GrpcError \| E, R>` |
 *
 * @since 0.1.0
 */
export type ClientMethod<M> = {
  /** One request out, one response back. */
  unary: (request: RequestOf<M>, options?: CallOptions) => Effect.Effect<ResponseOf<M>, GrpcError>
  /** One request out, a Stream of responses back. */
  serverStreaming: (request: RequestOf<M>, options?: CallOptions) => Stream.Stream<ResponseOf<M>, GrpcError>
  /** A Stream of requests out, one response back. */
  clientStreaming: <E = never, R = never>(
    requests: Stream.Stream<RequestOf<M>, E, R>,
    options?: CallOptions
  ) => Effect.Effect<ResponseOf<M>, GrpcError | E, R>
  /** A Stream of requests out, a Stream of responses back. */
  bidi: <E = never, R = never>(
    requests: Stream.Stream<RequestOf<M>, E, R>,
    options?: CallOptions
  ) => Stream.Stream<ResponseOf<M>, GrpcError | E, R>
}[MethodKind<M>]

/**
 * A typed client for a service, keyed like the definition's methods.
 *
 * @since 0.1.0
 */
export type Client<S extends ServiceDefinition> = {
  readonly [K in keyof S["methods"]]: ClientMethod<S["methods"][K]>
}

/**
 * A grpc-js channel to one target. Several typed clients can share it; it
 * closes with the Scope that opened it.
 *
 * @since 0.1.0
 */
export class GrpcChannel extends Context.Service<GrpcChannel, {
  readonly target: string
  /** The grpc-js client that owns the channel. */
  readonly client: grpc.Client
  /** Whether the service config asks calls of a method (service, method name) to wait for a ready backend. */
  readonly waitForReady?: ((service: string, method: string) => boolean) | undefined
  /** The channel's own request compression (default `identity`). */
  readonly compression?: Compression | undefined
  /**
   * A grpc-js client to the same target with another request compression
   * (for a call's `compression` option), opened on first use and closed
   * with this channel.
   */
  readonly withCompression?: ((compression: Compression) => grpc.Client) | undefined
}>()("@fiber-grpc/grpc/GrpcChannel") {}

/**
 * How to open a channel (`makeChannel`): credentials, grpc-js channel
 * options, a service config and request compression.
 *
 * @since 0.1.0
 */
export interface ChannelOptions {
  /** Default: insecure (plaintext HTTP/2). */
  readonly credentials?: grpc.ChannelCredentials | undefined
  /** grpc-js channel options (`grpc.max_receive_message_length`, keepalive, ...). */
  readonly channelOptions?: grpc.ChannelOptions | undefined
  /**
   * Load balancing, per-method timeouts, retries and hedging (see
   * `ServiceConfig`). Checked when the channel is made; takes the place of
   * a `grpc.service_config` channel option, and of a config published in DNS
   * TXT records (their lookup is turned off unless
   * `grpc.service_config_disable_resolution` is set in `channelOptions`).
   */
  readonly serviceConfig?: ServiceConfig.ServiceConfig | undefined
  /**
   * Compresses every request message of the channel's calls (`gzip` or
   * `deflate`; default `identity`, none); a call's own `compression` option
   * overrides it. grpc-js drops back to `identity` if the server's
   * `grpc-accept-encoding` lacks the algorithm. Responses are compressed only
   * if the server does it (grpc-js servers never do).
   */
  readonly compression?: Compression | undefined
  /**
   * grpc-js's channelz bookkeeping for this channel (its calls, subchannels
   * and per-connection message counts with timestamps). Default `false`, as
   * on `GrpcServer` (whose `channelz` option says why and how to read it).
   * Set, it wins over `grpc.enable_channelz` in `channelOptions`.
   */
  readonly channelz?: boolean | undefined
}

/** The clients a channel opened for per-call compression, closed with it. */
const siblingsOf = new WeakMap<grpc.Client, ReadonlyMap<Compression, grpc.Client>>()

/**
 * grpc-js acknowledges client-stream writes at once while they fit in its
 * per-call retry buffer (1 MiB by default), regardless of flow control, and
 * copies that buffer for every message it then sends: quadratic for long
 * streams of small messages (RetryingCall.clearSentMessages in grpc-js 1.14).
 * A smaller buffer keeps writes tied to flow control. A caller's own value wins.
 */
const defaultChannelOptions: grpc.ChannelOptions = {
  "grpc.per_rpc_retry_buffer_size": 64 * 1024,
  // Off unless asked for (the `channelz` option): grpc-js would otherwise
  // count and timestamp every call and message of the channel.
  "grpc.enable_channelz": 0
}

/**
 * Opens a channel in the current Scope. Calls started after the Scope closed
 * fail with `UNAVAILABLE` "channel closed".
 *
 * `target` is any grpc-js target: `host:port` (DNS), `dns:///name:port`,
 * `ipv4:10.0.0.1:50051,10.0.0.2:50051`, `ipv6:[::1]:50051`, `unix:/path`.
 * A name that resolves to several addresses is one backend per address once
 * `serviceConfig.loadBalancing` is `round_robin` (grpc-js's default,
 * `pick_first`, sends every call to one of them).
 *
 * With a `serviceConfig`, the channel fails to open with a
 * `ServiceConfigError` listing every problem in it.
 *
 * @since 0.1.0
 */
export function makeChannel(
  target: string,
  options?: ChannelOptions & { readonly serviceConfig?: undefined }
): Effect.Effect<GrpcChannel["Service"], never, Scope.Scope>
/**
 * Opens a channel with a service config, which is checked first.
 *
 * @since 0.1.0
 */
export function makeChannel(
  target: string,
  options?: ChannelOptions
): Effect.Effect<GrpcChannel["Service"], ServiceConfig.ServiceConfigError, Scope.Scope>
export function makeChannel(
  target: string,
  options?: ChannelOptions
): Effect.Effect<GrpcChannel["Service"], ServiceConfig.ServiceConfigError, Scope.Scope> {
  return Effect.acquireRelease(
    Effect.suspend(() => {
      const channelOptions: grpc.ChannelOptions = { ...defaultChannelOptions, ...options?.channelOptions }
      if (options?.channelz !== undefined) channelOptions["grpc.enable_channelz"] = options.channelz ? 1 : 0
      if (options?.compression !== undefined) {
        channelOptions["grpc.default_compression_algorithm"] = grpc.compressionAlgorithms[options.compression]
      }
      let waitForReady: WaitForReady | undefined
      if (options?.serviceConfig !== undefined) {
        const compiled = compileServiceConfig(options.serviceConfig, channelOptions["grpc-node.retry_max_attempts_limit"])
        if ("problems" in compiled) return Effect.fail(new ServiceConfig.ServiceConfigError({ problems: compiled.problems }))
        channelOptions["grpc.service_config"] = compiled.json
        // grpc-js treats this config as a default that a `grpc_config` DNS TXT
        // record replaces, looking one up on every resolution of a DNS
        // target; the config given here is meant to be the one in force.
        channelOptions["grpc.service_config_disable_resolution"] ??= 1
        waitForReady = compiled.waitForReady
      }
      const credentials = options?.credentials ?? grpc.credentials.createInsecure()
      let client: grpc.Client
      try {
        client = new grpc.Client(target, credentials, channelOptions)
      } catch (error) {
        // grpc-js checks the service config again (and the target) as it
        // builds the channel; what it rejects in a checked config is still
        // a config problem, while a bad target stays a defect.
        if (waitForReady === undefined) return Effect.die(error)
        try {
          const { "grpc.service_config": _, ...withoutConfig } = channelOptions
          new grpc.Client(target, credentials, withoutConfig).close()
        } catch {
          return Effect.die(error)
        }
        return Effect.fail(new ServiceConfig.ServiceConfigError({ problems: [error instanceof Error ? error.message : String(error)] }))
      }
      // Per-call compression: grpc-js reads it only from channel options, so a
      // call asking for another one goes through a sibling client (its own
      // connection), made on first use. After close, the closed main client.
      const siblings = new Map<Compression, grpc.Client>()
      const withCompression = (compression: Compression): grpc.Client => {
        if (closedChannels.has(client)) return client
        let sibling = siblings.get(compression)
        if (sibling === undefined) {
          sibling = new grpc.Client(target, credentials, {
            ...channelOptions,
            "grpc.default_compression_algorithm": grpc.compressionAlgorithms[compression]
          })
          siblings.set(compression, sibling)
        }
        return sibling
      }
      siblingsOf.set(client, siblings)
      return Effect.succeed(GrpcChannel.of({
        target,
        client,
        waitForReady,
        compression: options?.compression ?? "identity",
        withCompression
      }))
    }),
    (channel) =>
      Effect.sync(() => {
        flushPendingCancels()
        for (const client of [channel.client, ...(siblingsOf.get(channel.client)?.values() ?? [])]) {
          closedChannels.add(client)
          client.close()
        }
      })
  )
}

/**
 * The channel as a Layer (see `makeChannel`).
 *
 * @since 0.1.0
 */
export function layerChannel(
  target: string,
  options?: ChannelOptions & { readonly serviceConfig?: undefined }
): Layer.Layer<GrpcChannel>
/**
 * The channel as a Layer, with a service config, which is checked first.
 *
 * @since 0.1.0
 */
export function layerChannel(target: string, options?: ChannelOptions): Layer.Layer<GrpcChannel, ServiceConfig.ServiceConfigError>
export function layerChannel(
  target: string,
  options?: ChannelOptions
): Layer.Layer<GrpcChannel, ServiceConfig.ServiceConfigError> {
  return Layer.effect(GrpcChannel, makeChannel(target, options))
}

/**
 * A typed client for `definition` on the channel in context.
 *
 * `options.middleware` wraps every call, outermost first (see
 * GrpcMiddleware); the services it requires are taken from the context that
 * makes the client.
 *
 * @since 0.1.0
 */
export const make = <S extends ServiceDefinition, const M extends ReadonlyArray<GrpcMiddleware.AnyClientMiddleware> = []>(
  definition: S,
  options?: { readonly middleware?: M | undefined }
): Effect.Effect<Client<S>, never, GrpcChannel | GrpcMiddleware.ClientRequires<M>> =>
  GrpcChannel.use((channel) =>
    options?.middleware === undefined || options.middleware.length === 0
      ? Effect.succeed(makeWith(channel, definition))
      : Effect.map(
        Effect.context<GrpcMiddleware.ClientRequires<M>>(),
        (context) =>
          // Each middleware requires a part of ClientRequires<M>, all of which is in `context`.
          makeWith(channel, definition, {
            middleware: options.middleware as ReadonlyArray<GrpcMiddleware.ClientMiddleware<GrpcMiddleware.ClientRequires<M>>>,
            context
          })
      ))

/**
 * A typed client for `definition` on a given channel. Middleware given here
 * gets its required services from `context`.
 *
 * @since 0.1.0
 */
export const makeWith = <S extends ServiceDefinition, R = never>(
  channel: GrpcChannel["Service"],
  definition: S,
  options?: {
    readonly middleware: ReadonlyArray<GrpcMiddleware.ClientMiddleware<R>>
    readonly context: Context.Context<R>
  }
): Client<S> => {
  const grpcDefinition = toGrpcJs(definition)
  const client: Record<string, unknown> = {}
  for (const [key, method] of Object.entries(grpcDefinition)) {
    const codec: MethodCodec<unknown, unknown> = {
      path: method.path,
      serialize: method.requestSerialize,
      decode: method.responseDeserialize
    }
    const callOn = (grpcClient: grpc.Client): (input: never, options?: CallOptions) => unknown =>
      method.requestStream
        ? method.responseStream ? bidiStreamingCall(grpcClient, codec) : clientStreamingCall(grpcClient, codec)
        : method.responseStream
        ? serverStreamingCall(grpcClient, codec)
        : unaryCall(grpcClient, codec)
    const plain = callOn(channel.client)
    // A call's own `compression` picks the sibling client for it (see makeChannel);
    // calls without one pay a single property check.
    const compressed = new Map<Compression, (input: never, options?: CallOptions) => unknown>()
    const call = (input: never, options?: CallOptions): unknown => {
      const compression = options?.compression
      if (compression === undefined || compression === (channel.compression ?? "identity")) return plain(input, options)
      let sibling = compressed.get(compression)
      if (sibling === undefined) {
        if (channel.withCompression === undefined) {
          // A failure of the call (not a throw outside it), of the call's own shape.
          const error = makeGrpcError(
            Status.FAILED_PRECONDITION,
            `a call's compression option ("${compression}") needs a channel opened by GrpcClient.makeChannel; this GrpcChannel cannot open another`
          )
          return method.responseStream ? Stream.fail(error) : Effect.fail(error)
        }
        sibling = callOn(channel.withCompression(compression))
        compressed.set(compression, sibling)
      }
      return sibling(input, options)
    }
    const configured = channel.waitForReady?.(definition.fullName, definition.methods[key]!.name)
      ? (input: never, options?: CallOptions) => call(input, withWaitForReady(options))
      : call
    client[key] = options === undefined || options.middleware.length === 0 ? configured : applyClientMiddleware(
      configured,
      methodInfo(method.path, kindOf(method)),
      channel.target,
      options.middleware,
      // The middleware's services, merged under each call's own context.
      options.context as Context.Context<never>
    )
  }
  // The methods above were chosen per method by the same stream flags that
  // `ClientMethod` reads from the definition's types.
  return client as Client<S>
}

/**
 * grpc-js reads `waitForReady` from the service config but only acts on the
 * call's own metadata option (LoadBalancingCall and ResolvingCall check
 * `metadata.getOptions().waitForReady`), so the client sets it per call.
 */
const withWaitForReady = (options: CallOptions | undefined): CallOptions => {
  const metadata = options?.metadata?.clone() ?? new grpc.Metadata()
  metadata.setOptions({ waitForReady: true })
  return { ...options, metadata }
}

/**
 * Runs `effect` with client calls detached from the server call being
 * handled: they keep only their own deadlines. To also outlive the handler's
 * cancellation, run the work in a fiber that is not the handler's child (as
 * Java's `Context.fork()` does):
 *
 * ```ts
 * yield* Effect.forkDetach(GrpcClient.withoutPropagation(audit.record(entry)))
 * ```
 *
 * @since 0.1.0
 */
export const withoutPropagation = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Propagation, false)
