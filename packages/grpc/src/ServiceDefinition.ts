/**
 * The service definitions the framework consumes: ts-proto's
 * `outputServices=generic-definitions` output (the format nice-grpc uses too),
 * and the types derived from them. Nothing here is written per service: the
 * request, response and handler types all come from the generated `const`.
 *
 * @since 0.1.0
 * @module
 */
import type * as grpc from "@grpc/grpc-js"
import type { Effect, Scope, Stream } from "effect"
import type { CallContext } from "./CallContext.js"
import type { GrpcError } from "./GrpcError.js"
import { deserializer, serializer } from "./internal/codec.js"

/**
 * A ts-proto message codec (`MessageFns<T>`), reduced to what the wire needs.
 *
 * @since 0.1.0
 */
export interface MessageType<T> {
  /** Encodes a message; `finish()` returns its bytes. */
  encode(message: T): {
    /** The encoded bytes. */
    finish(): Uint8Array
  }
  /** Decodes a message from its bytes. */
  decode(input: Uint8Array): T
}

/**
 * One method of a generic definition.
 *
 * @since 0.1.0
 */
export interface MethodDefinition<Req = unknown, Res = unknown> {
  readonly name: string
  readonly requestType: MessageType<Req>
  readonly responseType: MessageType<Res>
  readonly requestStream: boolean
  readonly responseStream: boolean
}

/**
 * A ts-proto generic service definition, e.g. `EchoDefinition`.
 *
 * @since 0.1.0
 */
export interface ServiceDefinition {
  readonly name: string
  readonly fullName: string
  readonly methods: { readonly [method: string]: AnyMethodDefinition }
}

/**
 * A method of any message types: `encode` accepting `never` and `decode`
 * returning `unknown` make every ts-proto codec assignable without `any`.
 *
 * @since 0.1.0
 */
export interface AnyMethodDefinition {
  readonly name: string
  /** The request codec. */
  readonly requestType: AnyMessageType
  /** The response codec. */
  readonly responseType: AnyMessageType
  readonly requestStream: boolean
  readonly responseStream: boolean
}

/**
 * A codec of any message type (see `AnyMethodDefinition`).
 *
 * @since 0.1.0
 */
export interface AnyMessageType {
  /** Encodes a message; `finish()` returns its bytes. */
  encode(message: never): {
    /** The encoded bytes. */
    finish(): Uint8Array
  }
  /** Decodes a message from its bytes. */
  decode(input: Uint8Array): unknown
}

/**
 * The request message of a method.
 *
 * @since 0.1.0
 */
export type RequestOf<M> = M extends { readonly requestType: MessageType<infer T> } ? T : never

/**
 * The response message of a method.
 *
 * @since 0.1.0
 */
export type ResponseOf<M> = M extends { readonly responseType: MessageType<infer T> } ? T : never

/**
 * The call kind of a method, from its literal stream flags.
 *
 * @since 0.1.0
 */
export type MethodKind<M> = M extends { readonly requestStream: true }
  ? M extends { readonly responseStream: true } ? "bidi" : "clientStreaming"
  : M extends { readonly responseStream: true } ? "serverStreaming" : "unary"

/**
 * The handler of one method. `E` must be `GrpcError` (or `never`): any other
 * failure type would have no status to send, so it does not compile; map
 * domain errors with `Effect.mapError` first.
 *
 * | kind             | handler                                              |
 * | ---------------- | ---------------------------------------------------- |
 * | unary            | `(request, ctx) => Effect<Response, E, R>`           |
 * | server-streaming | `(request, ctx) => Stream<Response, E, R>`           |
 * | client-streaming | `(requests: Stream<Request>, ctx) => Effect<Response, E, R>` |
 * | bidi             | `(requests: Stream<Request>, ctx) => Stream<Response, E, R>` |
 *
 * @since 0.1.0
 */
export type Handler<M, E extends GrpcError = GrpcError, R = unknown> = {
  /** One request in, one response out. */
  unary: (request: RequestOf<M>, ctx: CallContext["Service"]) => Effect.Effect<ResponseOf<M>, E, R>
  /** One request in, a Stream of responses out. */
  serverStreaming: (request: RequestOf<M>, ctx: CallContext["Service"]) => Stream.Stream<ResponseOf<M>, E, R>
  /** A Stream of requests in, one response out. */
  clientStreaming: (
    requests: Stream.Stream<RequestOf<M>, GrpcError>,
    ctx: CallContext["Service"]
  ) => Effect.Effect<ResponseOf<M>, E, R>
  /** A Stream of requests in, a Stream of responses out. */
  bidi: (
    requests: Stream.Stream<RequestOf<M>, GrpcError>,
    ctx: CallContext["Service"]
  ) => Stream.Stream<ResponseOf<M>, E, R>
}[MethodKind<M>]

/**
 * Handlers for every method of a service, keyed as in the definition
 * (`unaryEcho`, `serverStreamingEcho`, ...).
 *
 * @since 0.1.0
 */
export type ServiceHandlers<S extends ServiceDefinition, R = unknown> = {
  readonly [K in keyof S["methods"]]: Handler<S["methods"][K], GrpcError, R>
}

/**
 * The services the handlers of `H` require, minus `CallContext`, which the
 * adapter provides to each call.
 *
 * @since 0.1.0
 */
export type HandlersContext<H> = Exclude<
  {
    [K in keyof H]: H[K] extends (...args: ReadonlyArray<never>) => infer Out
      ? Out extends Effect.Effect<infer _A, infer _E, infer R> ? R
      : Out extends Stream.Stream<infer _A, infer _E, infer R> ? R
      : never
      : never
  }[keyof H],
  CallContext
>

/**
 * Rejects handlers that require `Scope`: a call has no Scope of its own, and
 * borrowing the server's would keep every call's resources until shutdown.
 * Scoped work inside a handler goes in `Effect.scoped`.
 *
 * @since 0.1.0
 */
export type NoScope<H> = [Extract<HandlersContext<H>, Scope.Scope>] extends [never] ? unknown
  : { readonly "a handler requires Scope: wrap its scoped work in Effect.scoped": never }

/**
 * Builds the grpc-js `ServiceDefinition` (paths and codecs) for a generic
 * definition. Used by both the server and the client; the server's
 * (`forServer`) lends its response bytes instead of copying them (see
 * `SerializerOptions.lend`), which only a grpc-js server may use.
 *
 * @internal
 */
export const toGrpcJs = (definition: ServiceDefinition, forServer = false): grpc.ServiceDefinition => {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  for (const [key, method] of Object.entries(definition.methods)) {
    out[key] = {
      path: `/${definition.fullName}/${method.name}`,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: serializer(method.requestType),
      requestDeserialize: deserializer(method.requestType),
      responseSerialize: serializer(method.responseType, { lend: forServer }),
      responseDeserialize: deserializer(method.responseType),
      originalName: key
    }
  }
  return out
}
