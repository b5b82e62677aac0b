import { assert, describe, it } from "@effect/vitest"
import { GrpcClient, GrpcError, GrpcServer } from "@fiber-grpc/grpc"
import { HashFinderDefinition } from "@fiber-grpc/protos/hash_name/hash_name"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Stream } from "effect"
import * as HashFinder from "../src/HashFinder.js"
import { hashOf, substringHammingDistance } from "../src/search.js"

/** A HashFinder server whose log lines complete latches, and a client for it. */
const start = (maximumHashes: number) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const stopped = yield* Deferred.make<string>()
    const logger = Logger.make((options) => {
      const line = String(options.message)
      if (line.includes("started")) Deferred.doneUnsafe(started, Exit.void)
      if (line.includes("stopped") || line.includes("finished")) Deferred.doneUnsafe(stopped, Exit.succeed(line))
    })
    const context = yield* Layer.build(
      HashFinder.layer({ maximumHashes }).pipe(
        Layer.provide(Logger.layer([logger])),
        Layer.provideMerge(GrpcServer.layerTest)
      )
    )
    const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${Context.get(context, GrpcServer.GrpcServer).port}`)
    return { finder: GrpcClient.makeWith(channel, HashFinderDefinition), started, stopped }
  })

const impossible = { desiredName: "0123456789abcdef", idealHammingDistance: 0, interestingHammingDistance: 0 }

describe("hash-finder", () => {
  it.effect("Find returns a secret whose hash contains the name", () =>
    Effect.gen(function*() {
      const { finder } = yield* start(1_000_000)
      const found = yield* finder.find({ desiredName: "ab", idealHammingDistance: 0, interestingHammingDistance: 0 })
      assert.strictEqual(found.hashedName, hashOf(found.secret))
      assert.include(found.hashedName, "ab")
      assert.strictEqual(found.hammingDistance, 0)
    }))

  it.effect("FindRange streams closer and closer candidates and ends with the ideal one", () =>
    Effect.gen(function*() {
      const { finder } = yield* start(1_000_000)
      const all = yield* Stream.runCollect(
        finder.findRange({ desiredName: "abc", idealHammingDistance: 0, interestingHammingDistance: 1 })
      )
      assert.isAbove(all.length, 1)
      for (const r of all) assert.strictEqual(substringHammingDistance(r.hashedName, "abc"), r.hammingDistance)
      assert.strictEqual(all.at(-1)?.hammingDistance, 0)
    }))

  it.effect("the server-side limit ends the call with RESOURCE_EXHAUSTED, and the server keeps serving", () =>
    Effect.gen(function*() {
      const { finder, stopped } = yield* start(5_000)
      const error = yield* finder.find(impossible).pipe(Effect.flip)
      assert.strictEqual(error.code, GrpcError.Status.RESOURCE_EXHAUSTED)
      assert.include(error.message, "5000 hashes")
      assert.include(yield* Deferred.await(stopped), "limit reached")
      const streamed = yield* Stream.runCollect(finder.findRange(impossible)).pipe(Effect.flip)
      assert.strictEqual(streamed.code, GrpcError.Status.RESOURCE_EXHAUSTED)
      assert.include((yield* finder.find({ ...impossible, desiredName: "a" })).hashedName, "a")
    }))

  it.effect("a client cancel stops the search on the server", () =>
    Effect.gen(function*() {
      const { finder, started, stopped } = yield* start(Number.MAX_SAFE_INTEGER)
      const call = yield* Effect.forkChild(finder.find(impossible), { startImmediately: true })
      yield* Deferred.await(started)
      yield* Fiber.interrupt(call)
      assert.include(yield* Deferred.await(stopped), "cancelled by the client")
    }))

  it.effect("a client cancel stops a streaming search too", () =>
    Effect.gen(function*() {
      const { finder, started, stopped } = yield* start(Number.MAX_SAFE_INTEGER)
      const call = yield* Effect.forkChild(Stream.runDrain(finder.findRange(impossible)), { startImmediately: true })
      yield* Deferred.await(started)
      yield* Fiber.interrupt(call)
      assert.include(yield* Deferred.await(stopped), "cancelled by the client")
    }))
})
