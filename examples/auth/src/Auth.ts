/**
 * Bearer-token auth with GrpcMiddleware.
 *
 * Server: `authenticate` reads `authorization: Bearer <token>`, asks the
 * `Tokens` service who it belongs to, and provides `CurrentUser` to the
 * handlers. A call without a valid token ends with UNAUTHENTICATED before its
 * request message is decoded, and its handler never runs. Handlers that use
 * `CurrentUser` do not compile into a server without the middleware.
 *
 * Client: `TokenSource` holds an access token that a background fiber
 * refreshes, and `bearer` attaches the current one to every call.
 */
import { GrpcError, GrpcMiddleware, GrpcServer } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Duration, Effect, Layer, Option, Ref, Schedule, Stream } from "effect"

// -- server ------------------------------------------------------------------

/** The authenticated caller, provided to handlers by `authenticate`. */
export class CurrentUser extends Context.Service<CurrentUser, { readonly name: string }>()("auth/CurrentUser") {}

/** Who a token belongs to (a real server would verify a JWT or ask an identity service). */
export class Tokens extends Context.Service<Tokens, {
  readonly verify: (token: string) => Effect.Effect<Option.Option<string>>
}>()("auth/Tokens") {}

/** A fixed table of tokens, for the example and its tests. */
export const tokensFrom = (table: Record<string, string>): Layer.Layer<Tokens> =>
  Layer.succeed(Tokens, Tokens.of({ verify: (token) => Effect.succeed(Option.fromUndefinedOr(table[token])) }))

const unauthenticated = (message: string) => Effect.fail(GrpcError.make(GrpcError.Status.UNAUTHENTICATED, message))

/** Server middleware: `authorization: Bearer <token>` -> `CurrentUser`, or UNAUTHENTICATED. */
export const authenticate = GrpcMiddleware.provide(CurrentUser, (call) =>
  Effect.gen(function*() {
    const header = call.metadata.get("authorization")[0]
    if (typeof header !== "string" || !header.startsWith("Bearer ")) return yield* unauthenticated("missing bearer token")
    const name = yield* Tokens.use((tokens) => tokens.verify(header.slice("Bearer ".length)))
    if (Option.isNone(name)) return yield* unauthenticated("invalid token")
    return { name: name.value }
  }))

const greet = (message: string) => CurrentUser.use((user) => Effect.succeed({ message: `${user.name}: ${message}` }))

/** Echo, answering as the authenticated user. Requires `Tokens` (for the middleware) and a GrpcServer. */
export const EchoService = GrpcServer.serve(EchoDefinition, {
  unaryEcho: (request) => greet(request.message),
  serverStreamingEcho: (request) => Stream.fromEffect(greet(request.message)),
  clientStreamingEcho: (requests) =>
    Effect.flatMap(Stream.runCollect(requests), (all) => greet(all.map((r) => r.message).join(","))),
  bidirectionalStreamingEcho: (requests) => Stream.mapEffect(requests, (r) => greet(r.message))
}, { middleware: [GrpcMiddleware.annotateLogs, authenticate] })

// -- client ------------------------------------------------------------------

/** The current access token; refreshed in the background. */
export class TokenSource extends Context.Service<TokenSource, { readonly current: Effect.Effect<string> }>()(
  "auth/TokenSource"
) {}

/**
 * A TokenSource that fetches a token now and again every `every`, for the
 * Layer's lifetime. Calls always read the latest token.
 */
export const refreshingTokens = <E, R>(fetch: Effect.Effect<string, E, R>, every: Duration.Input) =>
  Layer.effect(
    TokenSource,
    Effect.gen(function*() {
      const token = yield* Ref.make(yield* fetch)
      yield* Effect.forkScoped(
        fetch.pipe(Effect.flatMap((t) => Ref.set(token, t)), Effect.ignore, Effect.repeat(Schedule.spaced(every)), Effect.delay(every))
      )
      return TokenSource.of({ current: Ref.get(token) })
    })
  )

/** Client middleware: `authorization: Bearer <current token>` on every call. */
export const bearer = GrpcMiddleware.clientMetadata((call) =>
  Effect.map(TokenSource.use((source) => source.current), (token) => call.metadata.set("authorization", `Bearer ${token}`))
)
