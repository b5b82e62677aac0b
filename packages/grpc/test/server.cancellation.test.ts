import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { CallContext } from "../src/index.js"
import type { EchoRequest } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { assertTimeoutCarried } from "./deadlines.js"
import { connect, rawCall } from "./h2.js"
import { clientStreamingCall, collect, rawClient, startEcho, tcpProxy, unaryCall } from "./helpers.js"

/**
 * Latches a handler uses to report what happened to it: it started, its own
 * finalizer ran, and the child fiber it forked was interrupted.
 */
const probes = Effect.gen(function*() {
  const started = yield* Deferred.make<void>()
  const handlerInterrupted = yield* Deferred.make<void>()
  const childInterrupted = yield* Deferred.make<void>()
  /** Forks a child that runs until interrupted, reports start, and waits forever. */
  const work = Effect.gen(function*() {
    yield* Effect.forkChild(Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(childInterrupted, undefined))), {
      startImmediately: true
    })
    yield* Deferred.succeed(started, undefined)
    return yield* Effect.never
  }).pipe(Effect.onInterrupt(() => Deferred.succeed(handlerInterrupted, undefined)))
  const bothInterrupted = Effect.andThen(Deferred.await(handlerInterrupted), Deferred.await(childInterrupted))
  return { started, work, bothInterrupted }
})

describe("GrpcServer: a client cancel interrupts the handler and the fibers it forked", () => {
  it.effect("unary", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const { client } = yield* startEcho({ unaryEcho: () => p.work })
      let call: grpc.ClientUnaryCall | undefined
      const fiber = yield* Effect.forkChild(unaryCall(client, { message: "x" }, { onCall: (c) => (call = c) }))
      yield* Deferred.await(p.started)
      call!.cancel()
      yield* p.bothInterrupted
      const seen = yield* Fiber.join(fiber)
      assert.strictEqual(seen.code, grpc.status.CANCELLED)
    }))

  it.effect("server streaming", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const { client } = yield* startEcho({
        serverStreamingEcho: () => Stream.concat(Stream.make({ message: "first" }), Stream.fromEffect(p.work))
      })
      const call = client.serverStreamingEcho({ message: "x" })
      const first = yield* Effect.callback<string>((resume) => {
        call.once("data", (m: { message: string }) => resume(Effect.succeed(m.message)))
      })
      assert.strictEqual(first, "first")
      yield* Deferred.await(p.started)
      const seen = yield* Effect.forkChild(collect(call), { startImmediately: true })
      call.cancel()
      yield* p.bothInterrupted
      assert.strictEqual((yield* Fiber.join(seen)).code, grpc.status.CANCELLED)
    }))

  it.effect("client streaming", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const { client } = yield* startEcho({
        clientStreamingEcho: (requests) => Effect.andThen(Stream.runHead(requests), p.work)
      })
      let call: grpc.ClientWritableStream<EchoRequest> | undefined
      const seen = yield* Effect.forkChild(
        clientStreamingCall(client, (c) => {
          call = c
          c.write({ message: "one" })
        }),
        { startImmediately: true }
      )
      yield* Deferred.await(p.started)
      call!.cancel()
      yield* p.bothInterrupted
      assert.strictEqual((yield* Fiber.join(seen)).code, grpc.status.CANCELLED)
    }))

  it.effect("bidi", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const { client } = yield* startEcho({
        bidirectionalStreamingEcho: (requests) =>
          requests.pipe(Stream.take(1), Stream.concat(Stream.fromEffect(p.work)))
      })
      const call = client.bidirectionalStreamingEcho()
      const seen = yield* Effect.forkChild(collect(call), { startImmediately: true })
      call.write({ message: "one" })
      yield* Deferred.await(p.started)
      call.cancel()
      yield* p.bothInterrupted
      const result = yield* Fiber.join(seen)
      assert.strictEqual(result.code, grpc.status.CANCELLED)
    }))
})

describe("GrpcServer: a client cancel that grpc-js delivers as a half-close first", () => {
  // grpc/grpc-node#2583: grpc-js's client closes its side (END_STREAM) before
  // sending RST_STREAM, so the server's grpc-js delivers the end of the
  // requests (`push(null)` on the call) and only then 'cancelled'. The
  // adapter keeps listening for 'cancelled' until the handler exits, so the
  // handler is still interrupted, whether or not it saw the end first (the
  // request Stream hands it over a turn of the event loop later, so usually
  // not). If grpc-js stops sending the half-close, the `halfClosed`
  // assertion below fails: drop it then.
  it.effect("grpc-js delivers the end of the requests, and the handler is then interrupted", () =>
    Effect.gen(function*() {
      const gotFirst = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      let halfClosed = false
      const { client } = yield* startEcho({
        clientStreamingEcho: (requests, ctx) => {
          // The request Stream's reader has replaced `push` by now; this
          // watches what grpc-js hands it.
          const call = ctx.call as grpc.ServerReadableStream<EchoRequest, unknown>
          const push = call.push.bind(call)
          call.push = (message: EchoRequest | null) => {
            if (message === null) halfClosed = true
            return push(message)
          }
          return Stream.runForEach(requests, () => Deferred.succeed(gotFirst, undefined)).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
        }
      })
      let call: grpc.ClientWritableStream<EchoRequest> | undefined
      yield* Effect.forkChild(clientStreamingCall(client, (c) => {
        call = c
        c.write({ message: "one" })
      }), { startImmediately: true })
      yield* Deferred.await(gotFirst)
      call!.cancel()
      yield* Deferred.await(interrupted)
      assert.isTrue(halfClosed, "grpc-js delivered the cancel as a half-close first")
    }))
})

describe("GrpcServer: deadlines", () => {
  // The peer is a raw HTTP/2 client that sends `grpc-timeout` and never
  // cancels. A grpc-js client would send RST_STREAM when its own timer fires,
  // which on a busy machine can reach the server before the server's timer
  // (started when the headers arrived) does, or even before the handler
  // starts: the call would then end as CANCELLED, or never reach the handler.
  // Here only the server's deadline can end the call, and the status checked
  // is the one the server sent.
  it.effect("an expired deadline interrupts the handler; the client sees DEADLINE_EXCEEDED", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const deadlineSeen = yield* Deferred.make<{ deadline: Option.Option<Date>; at: number }>()
      const { server } = yield* startEcho({
        unaryEcho: (_req, ctx) => Effect.andThen(Deferred.succeed(deadlineSeen, { deadline: ctx.deadline, at: Date.now() }), p.work)
      })
      const session = yield* connect(server.port)
      const sentAfter = Date.now()
      const result = yield* rawCall(session, "UnaryEcho", { "grpc-timeout": "300m" })
      assert.strictEqual(result.status, grpc.status.DEADLINE_EXCEEDED)
      yield* p.bothInterrupted
      const seen = yield* Deferred.await(deadlineSeen)
      assertTimeoutCarried(Option.getOrThrow(seen.deadline).getTime(), 300, { sentAfter, seenAt: seen.at })
    }))

  it.effect("a streaming handler is interrupted by the deadline too", () =>
    Effect.gen(function*() {
      const p = yield* probes
      const { server } = yield* startEcho({ serverStreamingEcho: () => Stream.fromEffect(p.work) })
      const session = yield* connect(server.port)
      const result = yield* rawCall(session, "ServerStreamingEcho", { "grpc-timeout": "200m" })
      assert.strictEqual(result.status, grpc.status.DEADLINE_EXCEEDED)
      yield* p.bothInterrupted
    }))

  it.effect("the call context reports no deadline when the client set none", () =>
    Effect.gen(function*() {
      const { client } = yield* startEcho({
        unaryEcho: () =>
          Effect.gen(function*() {
            const ctx = yield* CallContext.CallContext
            const remaining = yield* ctx.timeRemaining
            return { message: `${Option.isNone(ctx.deadline)} ${Option.isNone(remaining)} ${ctx.method}` }
          })
      })
      const result = yield* unaryCall(client, { message: "x" })
      assert.deepStrictEqual(result.response, { message: "true true /grpc.examples.echo.Echo/UnaryEcho" })
    }))
})

describe("GrpcServer: a dropped client connection", () => {
  it.effect("interrupts the in-flight handlers on it", () =>
    Effect.gen(function*() {
      const unary = yield* probes
      const stream = yield* probes
      const { server } = yield* startEcho({
        unaryEcho: () => unary.work,
        bidirectionalStreamingEcho: () => Stream.fromEffect(stream.work)
      })
      const proxy = yield* tcpProxy(server.port)
      const client = yield* rawClient(`127.0.0.1:${proxy.port}`)
      const unarySeen = yield* Effect.forkChild(unaryCall(client, { message: "x" }), { startImmediately: true })
      const bidi = client.bidirectionalStreamingEcho()
      const bidiSeen = yield* Effect.forkChild(collect(bidi), { startImmediately: true })
      yield* Deferred.await(unary.started)
      yield* Deferred.await(stream.started)
      proxy.cutAll()
      yield* unary.bothInterrupted
      yield* stream.bothInterrupted
      assert.strictEqual((yield* Fiber.join(unarySeen)).code, grpc.status.UNAVAILABLE)
      assert.strictEqual((yield* Fiber.join(bidiSeen)).code, grpc.status.UNAVAILABLE)
      yield* server.awaitIdle
      assert.strictEqual(yield* server.activeCalls, 0)
    }))
})

describe("GrpcServer: what a handler's finalizer can still read", () => {
  it.effect("peer and method are captured when the call starts, so they survive a dropped connection", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const seen = yield* Deferred.make<{ peer: string; method: string }>()
      const { server } = yield* startEcho({
        unaryEcho: (_, ctx) =>
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(seen, { peer: ctx.peer, method: ctx.method }))
          )
      })
      const proxy = yield* tcpProxy(server.port)
      const client = yield* rawClient(`127.0.0.1:${proxy.port}`)
      yield* Effect.forkChild(unaryCall(client, { message: "x" }), { startImmediately: true })
      yield* Deferred.await(started)
      proxy.cutAll()
      const { peer, method } = yield* Deferred.await(seen)
      assert.match(peer, /^127\.0\.0\.1:\d+$/)
      assert.strictEqual(method, "/grpc.examples.echo.Echo/UnaryEcho")
    }))
})
