/**
 * The server's connection options for a load-balanced fleet: keepalive pings
 * and maximum connection age with its grace. The timers are grpc-js's (wall
 * clock); the tests wait for what a peer observes (a PING, a GOAWAY, a new
 * connection), never for time.
 */
import { assert, describe, it } from "@effect/vitest"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as http2 from "node:http2"
import { GrpcClient, GrpcError } from "../src/index.js"
import { startEcho } from "./helpers.js"

/** A plain node:http2 session to the server, reporting the frames a gRPC server sends unprompted. */
const rawSession = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const session = http2.connect(`http://127.0.0.1:${port}`)
      session.on("error", () => {})
      return session
    }),
    (session) => Effect.sync(() => session.destroy())
  )

const onceEvent = (emitter: NodeJS.EventEmitter, event: string) =>
  Effect.callback<void>((resume) => {
    emitter.once(event, () => resume(Effect.void))
  })

describe("GrpcServer connection options", () => {
  it.effect("keepalive: the server pings an idle connection every `time`", () =>
    Effect.gen(function*() {
      const { server } = yield* startEcho({}, { keepalive: { time: "100 millis", timeout: "1 second" } })
      const session = yield* rawSession(server.port)
      yield* onceEvent(session, "ping")
      yield* onceEvent(session, "ping")
      assert.isFalse(session.closed)
    }))

  it.effect("maxConnectionAge: an old connection gets a GOAWAY; its running call finishes, the next call uses a new connection", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const arrived = yield* Deferred.make<void>()
      const peers: Array<string> = []
      const { server } = yield* startEcho({
        unaryEcho: (request, ctx) =>
          Effect.gen(function*() {
            peers.push(ctx.peer)
            if (request.message === "hold") {
              yield* Deferred.succeed(arrived, undefined)
              yield* Deferred.await(release)
            }
            return { message: request.message }
          })
      }, { maxConnectionAge: "300 millis" })
      // A raw session sees the GOAWAY itself.
      const session = yield* rawSession(server.port)
      const echo = GrpcClient.makeWith(yield* GrpcClient.makeChannel(`127.0.0.1:${server.port}`), EchoDefinition)
      const held = yield* Effect.forkChild(echo.unaryEcho({ message: "hold" }))
      yield* Deferred.await(arrived)
      yield* onceEvent(session, "goaway")
      // The client's connection is as old: keep calling until a call arrives from a new one.
      while (peers.at(-1) === peers[0]) yield* echo.unaryEcho({ message: "next" })
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(held), { message: "hold" })
      assert.notStrictEqual(peers.at(-1), peers[0])
    }))

  it.effect("maxConnectionAgeGrace: a call still running that long after the GOAWAY is cut (UNAVAILABLE, handler interrupted)", () =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const { server } = yield* startEcho({
        unaryEcho: () =>
          Deferred.succeed(arrived, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
      }, { maxConnectionAge: "200 millis", maxConnectionAgeGrace: "100 millis" })
      const echo = GrpcClient.makeWith(yield* GrpcClient.makeChannel(`127.0.0.1:${server.port}`), EchoDefinition)
      const exit = yield* Effect.exit(echo.unaryEcho({ message: "long" }))
      yield* Deferred.await(arrived)
      yield* Deferred.await(interrupted)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error.code, GrpcError.Status.UNAVAILABLE)
    }))
})
