/**
 * Server middleware over real HTTP/2, against a plain @grpc/grpc-js client:
 * providing a service to the handlers of all four call kinds, rejecting a
 * call before its request is decoded, and the documented order.
 */
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Context, Effect, Layer, Logger, References, type Scope, Stream } from "effect"
import { GrpcError, GrpcMiddleware, GrpcServer } from "../src/index.js"
import { clientStreamingCall, collect, echoDefaults, rawClient, unaryCall } from "./helpers.js"

class CurrentUser extends Context.Service<CurrentUser, { readonly name: string }>()("test/CurrentUser") {}

const auth = GrpcMiddleware.provide(CurrentUser, (call) => {
  const token = call.metadata.get("authorization")[0]
  return token === "Bearer good"
    ? Effect.succeed({ name: "alice" })
    : Effect.fail(GrpcError.make(GrpcError.Status.UNAUTHENTICATED, "missing or bad token"))
})

/** EchoDefinition whose request decoder counts its calls. */
const countingDefinition = () => {
  let decoded = 0
  const methods = Object.fromEntries(
    Object.entries(EchoDefinition.methods).map(([key, method]) => [key, {
      ...method,
      requestType: {
        ...method.requestType,
        decode: (input: Uint8Array) => {
          decoded++
          return method.requestType.decode(input)
        }
      }
    }])
  ) as unknown as typeof EchoDefinition.methods
  return { definition: { ...EchoDefinition, methods }, decoded: () => decoded }
}

const start = <R>(layer: Layer.Layer<never, never, GrpcServer.GrpcServer | R>, serverOptions?: Partial<GrpcServer.Options>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      layer.pipe(Layer.provideMerge(GrpcServer.layer({ ...GrpcServer.testOptions, ...serverOptions })))
    ) as Effect.Effect<Context.Context<GrpcServer.GrpcServer>, never, never>
    const server = Context.get(context, GrpcServer.GrpcServer)
    return yield* rawClient(`127.0.0.1:${server.port}`)
  })

const bearer = (token: string) => {
  const metadata = new grpc.Metadata()
  metadata.set("authorization", `Bearer ${token}`)
  return metadata
}

const whoAmI = CurrentUser.use((user) => Effect.succeed(user.name))

describe("GrpcMiddleware: server", () => {
  it.effect("provides a service to the handlers of all four call kinds", () =>
    Effect.gen(function*() {
      const client = yield* start(GrpcServer.serve(EchoDefinition, {
        unaryEcho: (req) => Effect.map(whoAmI, (name) => ({ message: `${name}:${req.message}` })),
        serverStreamingEcho: (req) =>
          Stream.unwrap(Effect.map(whoAmI, (name) => Stream.make({ message: `${name}:${req.message}` }, { message: "2" }))),
        clientStreamingEcho: (requests) =>
          Effect.gen(function*() {
            const all = yield* Stream.runCollect(requests)
            return { message: `${yield* whoAmI}:${all.map((r) => r.message).join(",")}` }
          }),
        bidirectionalStreamingEcho: (requests) =>
          Stream.mapEffect(requests, (r) => Effect.map(whoAmI, (name) => ({ message: `${name}:${r.message}` })))
      }, { middleware: [auth] }))

      const unary = yield* unaryCall(client, { message: "u" }, { metadata: bearer("good") })
      assert.strictEqual(unary.code, grpc.status.OK)
      assert.strictEqual(unary.response?.message, "alice:u")

      const streamed = yield* collect(client.serverStreamingEcho({ message: "s" }, bearer("good")))
      assert.strictEqual(streamed.code, grpc.status.OK)
      assert.deepStrictEqual(streamed.messages.map((m) => m.message), ["alice:s", "2"])

      const clientStreamed = yield* Effect.callback<{ code: grpc.status; message: string | undefined }>((resume) => {
        let message: string | undefined
        const call = client.clientStreamingEcho(bearer("good"), (_e, v) => {
          message = v?.message
        })
        call.on("status", (s) => resume(Effect.succeed({ code: s.code, message })))
        call.write({ message: "a" })
        call.write({ message: "b" })
        call.end()
      })
      assert.deepStrictEqual(clientStreamed, { code: grpc.status.OK, message: "alice:a,b" })

      const bidi = client.bidirectionalStreamingEcho(bearer("good"))
      bidi.write({ message: "x" })
      bidi.end()
      const bidiResult = yield* collect(bidi)
      assert.strictEqual(bidiResult.code, grpc.status.OK)
      assert.deepStrictEqual(bidiResult.messages.map((m) => m.message), ["alice:x"])
    }))

  it.effect("rejects a call with UNAUTHENTICATED before its request is decoded, for every kind", () =>
    Effect.gen(function*() {
      const { definition, decoded } = countingDefinition()
      let handled = 0
      const handler = () =>
        Effect.sync(() => {
          handled++
          return { message: "never" }
        })
      const client = yield* start(GrpcServer.serve(definition, {
        unaryEcho: handler,
        serverStreamingEcho: () => Stream.fromEffect(handler()),
        clientStreamingEcho: (requests) => Effect.andThen(Stream.runDrain(requests), handler()),
        bidirectionalStreamingEcho: (requests) => Stream.mapEffect(requests, handler)
      }, { middleware: [auth] }))

      const unary = yield* unaryCall(client, { message: "u" }, { metadata: bearer("bad") })
      assert.strictEqual(unary.code, grpc.status.UNAUTHENTICATED)
      assert.strictEqual(unary.details, "missing or bad token")

      const noToken = yield* unaryCall(client, { message: "u" })
      assert.strictEqual(noToken.code, grpc.status.UNAUTHENTICATED)

      const streamed = yield* collect(client.serverStreamingEcho({ message: "s" }, bearer("bad")))
      assert.strictEqual(streamed.code, grpc.status.UNAUTHENTICATED)

      const clientStreamed = yield* clientStreamingCall(client, (call) => {
        call.write({ message: "a" })
        call.end()
      })
      assert.strictEqual(clientStreamed.code, grpc.status.UNAUTHENTICATED)

      const bidi = client.bidirectionalStreamingEcho(bearer("bad"))
      bidi.write({ message: "x" })
      bidi.end()
      assert.strictEqual((yield* collect(bidi)).code, grpc.status.UNAUTHENTICATED)

      assert.strictEqual(decoded(), 0, "no request message was decoded")
      assert.strictEqual(handled, 0, "no handler ran")

      // The same server decodes as usual once the middleware lets the call in.
      const ok = yield* unaryCall(client, { message: "u" }, { metadata: bearer("good") })
      assert.strictEqual(ok.code, grpc.status.OK)
      assert.strictEqual(decoded(), 1)
    }))

  it.effect("make({ decodeFirst: true }) runs after grpc-js decoded the request; make() runs before", () =>
    Effect.gen(function*() {
      const reject = GrpcMiddleware.make()(() => Effect.fail(GrpcError.make(GrpcError.Status.PERMISSION_DENIED, "no")))
      const rejectAfter = GrpcMiddleware.make({ decodeFirst: true })(() =>
        Effect.fail(GrpcError.make(GrpcError.Status.PERMISSION_DENIED, "no"))
      )
      assert.isUndefined(reject.decodeFirst)
      assert.isTrue(rejectAfter.decodeFirst)
      for (const [middleware, decodedBefore] of [[reject, 0], [rejectAfter, 1]] as const) {
        const { definition, decoded } = countingDefinition()
        const client = yield* start(GrpcServer.serve(definition, { ...echoDefaults, unaryEcho: Effect.succeed }, {
          middleware: [middleware]
        }))
        const result = yield* unaryCall(client, { message: "u" })
        assert.strictEqual(result.code, grpc.status.PERMISSION_DENIED)
        assert.strictEqual(decoded(), decodedBefore)
      }
    }))

  it.effect("without middleware, grpc-js decodes the request before the handler runs (the path is unchanged)", () =>
    Effect.gen(function*() {
      const { definition, decoded } = countingDefinition()
      const client = yield* start(GrpcServer.serve(definition, {
        ...echoDefaults,
        unaryEcho: () => Effect.fail(GrpcError.make(GrpcError.Status.UNAUTHENTICATED, "no"))
      }))
      const result = yield* unaryCall(client, { message: "u" })
      assert.strictEqual(result.code, grpc.status.UNAUTHENTICATED)
      assert.strictEqual(decoded(), 1)
    }))

  it.effect("runs server-wide middleware outside per-service middleware, each list outermost first", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const mark = (name: string) =>
        GrpcMiddleware.make()((effect) =>
          Effect.sync(() => log.push(`${name} in`)).pipe(
            Effect.andThen(effect),
            Effect.ensuring(Effect.sync(() => log.push(`${name} out`)))
          )
        )
      const client = yield* start(
        GrpcServer.serve(EchoDefinition, {
          ...echoDefaults,
          unaryEcho: (req) => Effect.sync(() => (log.push("handler"), { message: req.message }))
        }, { middleware: [mark("service 1"), mark("service 2")] }),
        { middleware: [mark("server 1"), mark("server 2")] }
      )
      const result = yield* unaryCall(client, { message: "u" })
      assert.strictEqual(result.code, grpc.status.OK)
      assert.deepStrictEqual(log, [
        "server 1 in",
        "server 2 in",
        "service 1 in",
        "service 2 in",
        "handler",
        "service 2 out",
        "service 1 out",
        "server 2 out",
        "server 1 out"
      ])
    }))

  for (const decodeFirst of [false, true]) {
    it.effect(`counts the messages a call received and sent (${decodeFirst ? "grpc-js decodes first" : "decoded in the chain"})`, () =>
      Effect.gen(function*() {
        const seen: Array<[string, number, number]> = []
        const count: GrpcMiddleware.ServerMiddleware = {
          decodeFirst,
          wrap: (effect, call, method) =>
            Effect.ensuring(effect, Effect.sync(() => seen.push([method.kind, call.messagesReceived, call.messagesSent])))
        }
        const client = yield* start(GrpcServer.serve(EchoDefinition, {
          unaryEcho: (req) => Effect.succeed(req),
          serverStreamingEcho: (req) => Stream.make(req, req, req),
          clientStreamingEcho: (requests) => Effect.map(Stream.runCollect(requests), (all) => ({ message: `${all.length}` })),
          bidirectionalStreamingEcho: (requests) => Stream.flatMap(requests, (r) => Stream.make(r, r))
        }, { middleware: [count] }))
        yield* unaryCall(client, { message: "u" })
        yield* collect(client.serverStreamingEcho({ message: "s" }))
        yield* clientStreamingCall(client, (call) => {
          for (const m of ["a", "b", "c", "d"]) call.write({ message: m })
          call.end()
        })
        const bidi = client.bidirectionalStreamingEcho()
        bidi.write({ message: "x" })
        bidi.write({ message: "y" })
        bidi.end()
        yield* collect(bidi)
        assert.deepStrictEqual(seen, [["unary", 0, 0], ["serverStreaming", 0, 3], ["clientStreaming", 4, 0], ["bidi", 2, 4]])
      }))
  }

  it.effect("annotateLogs: handler logs carry the method and the peer", () => {
    const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
    const capture = Logger.make((options) => {
      lines.push({ message: options.message, annotations: { ...options.fiber.getRef(References.CurrentLogAnnotations) } })
    })
    return Effect.gen(function*() {
      const client = yield* start(GrpcServer.serve(EchoDefinition, {
        ...echoDefaults,
        unaryEcho: (req) => Effect.as(Effect.log("handling"), req)
      }, { middleware: [GrpcMiddleware.annotateLogs] }))
      yield* unaryCall(client, { message: "u" })
      const line = lines.find((l) => Array.isArray(l.message) && l.message[0] === "handling")
      assert.isDefined(line)
      assert.strictEqual(line!.annotations["rpc.method"], "grpc.examples.echo.Echo/UnaryEcho")
      assert.strictEqual(line!.annotations["client.address"], "127.0.0.1")
      assert.isNumber(line!.annotations["client.port"])
    }).pipe(Effect.provide(Logger.layer([capture])))
  })

  it.effect("a middleware wrap or provide build that throws ends the call INTERNAL and is logged, like a throwing handler", () => {
    const logged: Array<string> = []
    let onLog: () => void = () => {}
    const capture = Logger.make((options) => {
      if (String(options.message).includes("died")) {
        logged.push(String(options.message))
        onLog()
      }
    })
    const throwingWrap = GrpcMiddleware.make()(() => {
      throw new Error("wrap exploded")
    })
    const throwingBuild = GrpcMiddleware.provide(CurrentUser, () => {
      throw new Error("build exploded")
    })
    return Effect.gen(function*() {
      for (const middleware of [throwingWrap, throwingBuild]) {
        logged.length = 0
        const wasLogged = new Promise<void>((resolve) => (onLog = resolve))
        const client = yield* start(GrpcServer.serve(EchoDefinition, echoDefaults, { middleware: [middleware] }))
        const result = yield* unaryCall(client, { message: "u" })
        assert.strictEqual(result.code, grpc.status.INTERNAL)
        assert.strictEqual(result.details, "Internal server error")
        yield* Effect.promise(() => wasLogged)
        assert.strictEqual(logged.length, 1)
      }
    }).pipe(Effect.provide(Logger.layer([capture])))
  })

  it("types: a handler that needs CurrentUser compiles into a runnable server only with a middleware that provides it", () => {
    const handlers = {
      ...echoDefaults,
      unaryEcho: (req: { message: string }) => Effect.map(whoAmI, (name) => ({ message: `${name}:${req.message}` }))
    }
    const withAuth: Layer.Layer<never, never, GrpcServer.GrpcServer> = GrpcServer.serve(EchoDefinition, handlers, {
      middleware: [auth]
    })
    // @ts-expect-error without the middleware, CurrentUser is still required
    const without: Layer.Layer<never, never, GrpcServer.GrpcServer> = GrpcServer.serve(EchoDefinition, handlers)

    class Verifier extends Context.Service<Verifier, { readonly verify: (token: string) => Effect.Effect<string> }>()(
      "test/Verifier"
    ) {}
    const verified = GrpcMiddleware.provide(CurrentUser, (call) =>
      Effect.map(Verifier.use((v) => v.verify(String(call.metadata.get("authorization")[0]))), (name) => ({ name })))
    // The middleware's own requirement joins the layer's.
    const needsVerifier: Layer.Layer<never, never, GrpcServer.GrpcServer | Verifier> = GrpcServer.serve(
      EchoDefinition,
      handlers,
      { middleware: [verified] }
    )
    // @ts-expect-error the Verifier requirement cannot be dropped
    const dropped: Layer.Layer<never, never, GrpcServer.GrpcServer> = GrpcServer.serve(EchoDefinition, handlers, {
      middleware: [verified]
    })
    // addService, the Effect form, is typed the same way.
    const added = GrpcServer.GrpcServer.use((server) => server.addService(EchoDefinition, handlers, [verified]))
    const addedNeeds: Effect.Effect<void, never, GrpcServer.GrpcServer | Scope.Scope | Verifier> = added
    // @ts-expect-error the middleware's Verifier requirement is in the Effect's
    const addedDropped: Effect.Effect<void, never, GrpcServer.GrpcServer | Scope.Scope> = added
    const addedWithAuth: Effect.Effect<void, never, GrpcServer.GrpcServer | Scope.Scope> = GrpcServer.GrpcServer.use((
      server
    ) => server.addService(EchoDefinition, handlers, [auth]))
    // @ts-expect-error without the middleware, CurrentUser is still required
    const addedWithout: Effect.Effect<void, never, GrpcServer.GrpcServer | Scope.Scope> = GrpcServer.GrpcServer.use((
      server
    ) => server.addService(EchoDefinition, handlers))
    assert.strictEqual([withAuth, without, needsVerifier, dropped, addedNeeds, addedDropped, addedWithAuth, addedWithout].length, 8)
  })
})
