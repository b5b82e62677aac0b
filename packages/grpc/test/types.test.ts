/**
 * Compile-time guarantees, checked by `pnpm typecheck` (the `@ts-expect-error`
 * lines fail the type check if they ever compile) and run as plain tests.
 */
import { describe, expect, it } from "@effect/vitest"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Effect, type Layer, Stream } from "effect"
import { GrpcError, GrpcServer } from "../src/index.js"
import { echoDefaults } from "./helpers.js"

class Database extends Context.Service<Database, { readonly lookup: (key: string) => Effect.Effect<string> }>()(
  "test/Database"
) {}

class NotFound {
  readonly _tag = "NotFound"
}

describe("handler types", () => {
  it("a handler's requirements become the serve layer's", () => {
    const layer = GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: (req) => Effect.map(Database.use((db) => db.lookup(req.message)), (message) => ({ message }))
    })
    const typed: Layer.Layer<never, never, GrpcServer.GrpcServer | Database> = layer
    // @ts-expect-error the requirement on Database cannot be dropped
    const dropped: Layer.Layer<never, never, GrpcServer.GrpcServer> = layer
    expect([typed, dropped]).toHaveLength(2)
  })

  it("an error type that is not a gRPC status does not compile", () => {
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      // @ts-expect-error NotFound has no gRPC status: map it to a GrpcError first
      unaryEcho: () => Effect.fail(new NotFound())
    })
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: () =>
        Effect.fail(new NotFound()).pipe(
          Effect.mapError(() => GrpcError.make(GrpcError.Status.NOT_FOUND, "not found"))
        )
    })
  })

  it("a handler that requires Scope does not compile (its resources would live until shutdown)", () => {
    // @ts-expect-error acquireRelease without Effect.scoped requires Scope
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: (req) => Effect.as(Effect.acquireRelease(Effect.void, () => Effect.void), req)
    })
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      unaryEcho: (req) => Effect.scoped(Effect.as(Effect.acquireRelease(Effect.void, () => Effect.void), req))
    })
  })

  it("request and response types come from the definition", () => {
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      // @ts-expect-error a server-streaming handler returns a Stream, not an Effect
      serverStreamingEcho: (req) => Effect.succeed({ message: req.message }),
      // @ts-expect-error the response must be an EchoResponse
      unaryEcho: () => Effect.succeed({ text: "wrong field" })
    })
    GrpcServer.serve(EchoDefinition, {
      ...echoDefaults,
      bidirectionalStreamingEcho: (requests) => Stream.map(requests, (r) => ({ message: r.message }))
    })
  })
})
