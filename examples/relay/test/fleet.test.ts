/**
 * The relay in front of three upstream servers written with plain grpc-js,
 * each behind a TCP proxy the test kills as a crash would (listener closed,
 * connections dropped): round-robin spread, failover on UNAVAILABLE, and the
 * caller's cancel and deadline reaching the upstream serving each call.
 * Balancing and retries run on grpc-js's timers; the test waits for what the
 * upstreams observed, never for time.
 */
import { assert, describe, it } from "@effect/vitest"
import { GrpcServer } from "@fiber-grpc/grpc"
import { EchoClient, type EchoRequest, type EchoResponse, EchoService } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Fiber, Layer } from "effect"
import * as net from "node:net"
import * as Relay from "../src/Relay.js"
import { startRelayProcess } from "./cli.js"

interface Arrival {
  readonly upstream: number
  readonly message: string
  readonly previousAttempts: number
  readonly deadline: number
  /** When the upstream saw the call (ms since epoch). */
  readonly at: number
  cancelled: boolean
}

/** Three plain grpc-js Echo upstreams behind killable proxies; "hold" calls wait for `release()`. */
const upstreams = Effect.gen(function*() {
  const arrivals: Array<Arrival> = []
  const held: Array<() => void> = []
  const listeners = new Set<() => void>()
  const changed = () => listeners.forEach((f) => f())
  const ports = yield* Effect.forEach([0, 1, 2], (upstream) =>
    Effect.gen(function*() {
      const server = new grpc.Server()
      server.addService(EchoService, {
        unaryEcho: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
          const deadline = call.getDeadline()
          const arrival: Arrival = {
            upstream,
            message: call.request.message,
            previousAttempts: Number(call.metadata.get("grpc-previous-rpc-attempts")[0] ?? 0),
            deadline: deadline instanceof Date ? deadline.getTime() : deadline,
            at: Date.now(),
            cancelled: false
          }
          arrivals.push(arrival)
          call.on("cancelled", () => {
            arrival.cancelled = call.cancelled && !answered
            changed()
          })
          let answered = false
          const answer = () => {
            answered = true
            callback(null, { message: `${call.request.message} from ${upstream}` })
          }
          if (call.request.message.startsWith("hold")) held.push(answer)
          else if (!call.request.message.startsWith("never")) answer()
          changed()
        }
      })
      const port = yield* Effect.acquireRelease(
        Effect.callback<number>((resume) =>
          server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
            resume(e ? Effect.die(e) : Effect.succeed(p)))
        ),
        () => Effect.sync(() => server.forceShutdown())
      )
      return yield* proxy(port)
    }))
  return {
    arrivals,
    ports: ports.map((p) => p.port),
    kill: (i: number) => ports[i]!.close(),
    release: () => held.splice(0).forEach((answer) => answer()),
    until: (predicate: () => boolean) =>
      Effect.callback<void>((resume) => {
        const check = () => {
          if (predicate()) {
            listeners.delete(check)
            resume(Effect.void)
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
  }
})

/** A TCP proxy whose `close` kills it like a crashed process: no listener, connections reset. */
const proxy = (target: number) =>
  Effect.acquireRelease(
    Effect.callback<{ port: number; close: () => void }>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((inbound) => {
        const outbound = net.connect(target, "127.0.0.1")
        sockets.add(inbound).add(outbound)
        inbound.pipe(outbound).pipe(inbound)
        for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
          a.on("error", () => b.destroy())
          a.on("close", () => b.destroy())
        }
      })
      const close = () => {
        server.close()
        sockets.forEach((s) => s.destroy())
      }
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, close })))
    }),
    (p) => Effect.sync(() => p.close())
  )

const counts = (arrivals: ReadonlyArray<Arrival>) => [0, 1, 2].map((i) => arrivals.filter((a) => a.upstream === i).length)

const startRelay = (target: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Relay.layer(target).pipe(Layer.provideMerge(GrpcServer.layerTest)))
    const port = Context.get(context, GrpcServer.GrpcServer).port
    return yield* Effect.acquireRelease(
      Effect.sync(() => new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
      (c) => Effect.sync(() => c.close())
    )
  })

const unary = (client: EchoClient, message: string, deadline?: number) =>
  Effect.callback<{ code: number; message?: string }>((resume) => {
    client.unaryEcho({ message }, new grpc.Metadata(), deadline === undefined ? {} : { deadline }, (error, response) =>
      resume(Effect.succeed(error ? { code: error.code } : { code: 0, message: response!.message })))
  })

const warmUp = (client: EchoClient, fleet: { arrivals: Array<Arrival> }) =>
  Effect.gen(function*() {
    while (counts(fleet.arrivals).some((n) => n === 0)) yield* unary(client, "warm-up")
    fleet.arrivals.length = 0
  })

describe("relay in front of three upstreams (round robin, retry UNAVAILABLE)", () => {
  it("--upstream values become one grpc-js target", () => {
    assert.deepStrictEqual(Relay.upstreamTarget(["127.0.0.1:1"]), { target: "127.0.0.1:1" })
    assert.deepStrictEqual(Relay.upstreamTarget(["dns:///echo.default.svc:50051"]), { target: "dns:///echo.default.svc:50051" })
    assert.deepStrictEqual(Relay.upstreamTarget(["ipv4:10.0.0.1:1,10.0.0.2:1"]), { target: "ipv4:10.0.0.1:1,10.0.0.2:1" })
    assert.deepStrictEqual(Relay.upstreamTarget(["10.0.0.1:1", "10.0.0.2:1,10.0.0.3:1"]), {
      target: "ipv4:10.0.0.1:1,10.0.0.2:1,10.0.0.3:1"
    })
    assert.deepStrictEqual(Relay.upstreamTarget(["[::1]:1", "[::1]:2"]), { target: "ipv6:[::1]:1,[::1]:2" })
    assert.isTrue("error" in Relay.upstreamTarget(["a.example:1", "b.example:1"]))
  })

  it.effect("several upstreams given by name are looked up once at start", () =>
    Effect.gen(function*() {
      const resolved = yield* Effect.promise(() => Relay.resolveNames(["localhost:1,localhost:2", "127.0.0.3:3"]))
      assert.deepStrictEqual(resolved, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.3:3"])
      assert.deepStrictEqual(yield* Effect.promise(() => Relay.resolveNames(["localhost:1"])), ["localhost:1"])
    }))

  it("no upstream at all is an error", () => {
    assert.isTrue("error" in Relay.upstreamTarget([]))
  })

  it.effect("spreads calls evenly, fails over when one upstream dies mid-load, and loses no call", () =>
    Effect.gen(function*() {
      const fleet = yield* upstreams
      const client = yield* startRelay(`ipv4:${fleet.ports.map((p) => `127.0.0.1:${p}`).join(",")}`)
      yield* warmUp(client, fleet)
      for (let i = 0; i < 30; i++) yield* unary(client, `call ${i}`)
      assert.deepStrictEqual(counts(fleet.arrivals), [10, 10, 10])

      fleet.arrivals.length = 0
      const calls = yield* Effect.forkChild(Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => unary(client, `hold ${i}`),
        { concurrency: "unbounded" }
      ))
      yield* fleet.until(() => fleet.arrivals.length === 30)
      assert.deepStrictEqual(counts(fleet.arrivals), [10, 10, 10])
      const onKilled = fleet.arrivals.filter((a) => a.upstream === 2).map((a) => a.message)
      fleet.kill(2)
      // each call the dead upstream held arrives again, as attempt 2, on a live one
      yield* fleet.until(() =>
        onKilled.every((m) => fleet.arrivals.some((a) => a.message === m && a.previousAttempts === 1 && a.upstream !== 2))
      )
      fleet.release()
      const results = yield* Fiber.join(calls)
      assert.deepStrictEqual(results.map((r) => r.code), Array.from({ length: 30 }, () => 0))
      fleet.arrivals.length = 0
      for (let i = 0; i < 10; i++) assert.strictEqual((yield* unary(client, `after ${i}`)).code, 0)
      assert.strictEqual(counts(fleet.arrivals)[2], 0)
    }))

  it.effect("a client's cancel and deadline reach the upstream serving each call", () =>
    Effect.gen(function*() {
      const fleet = yield* upstreams
      const client = yield* startRelay(`ipv4:${fleet.ports.map((p) => `127.0.0.1:${p}`).join(",")}`)
      yield* warmUp(client, fleet)
      // three calls, one per upstream; cancel the second only
      const calls = [0, 1, 2].map((i) => client.unaryEcho({ message: `never ${i}` }, () => {}))
      yield* fleet.until(() => fleet.arrivals.length === 3)
      calls[1]!.cancel()
      const target = fleet.arrivals.find((a) => a.message === "never 1")!
      yield* fleet.until(() => target.cancelled)
      assert.deepStrictEqual(fleet.arrivals.filter((a) => a.cancelled).map((a) => a.message), ["never 1"])
      calls[0]!.cancel()
      calls[2]!.cancel()
      yield* fleet.until(() => fleet.arrivals.every((a) => a.cancelled))

      fleet.arrivals.length = 0
      // A second: every call must reach its (connected) upstream before it passes.
      const sentAfter = Date.now()
      const deadline = sentAfter + 1000
      const results = yield* Effect.forEach([0, 1, 2], (i) => unary(client, `never d${i}`, deadline), { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => r.code), [4, 4, 4])
      assert.deepStrictEqual(counts(fleet.arrivals), [1, 1, 1])
      // Each upstream's deadline is the client's, moved later only by the
      // transit of both hops: never earlier, and no later than that transit.
      for (const arrival of fleet.arrivals) {
        assert.isAtLeast(arrival.deadline, deadline)
        assert.isAtMost(arrival.deadline, deadline + (arrival.at - sentAfter))
      }
      yield* fleet.until(() => fleet.arrivals.every((a) => a.cancelled))
    }))

  it.live("the command line takes several --upstream values (names or addresses, repeated or comma-separated) and balances over them", () =>
    Effect.gen(function*() {
      const fleet = yield* upstreams
      const { client, terminate } = yield* startRelayProcess([
        "--upstream",
        `localhost:${fleet.ports[0]},localhost:${fleet.ports[1]}`,
        "--upstream",
        `127.0.0.1:${fleet.ports[2]}`
      ])
      yield* warmUp(client, fleet)
      for (let i = 0; i < 9; i++) yield* unary(client, `cli ${i}`)
      assert.deepStrictEqual(counts(fleet.arrivals), [3, 3, 3])
      assert.strictEqual(yield* terminate, 0)
    }))
})
