// The adopter test's app: compiled with `tsc --strict` (module NodeNext) and
// run with plain `node`. A Storefront server forwards to an Inventory server
// through a GrpcClient; a client checks what each side observed. The
// Storefront server also serves health and reflection, from the descriptors
// the README's codegen recipe embeds.
import { CallContext, GrpcClient, GrpcError, GrpcHealth, GrpcReflection, GrpcServer } from "@fiber-grpc/grpc"
import { ServerReflectionDefinition } from "@fiber-grpc/grpc/generated/grpc/reflection/v1/reflection"
import { Context, Deferred, Effect, Fiber, Layer, Option, Stream } from "effect"
import { file as shopProto } from "./gen/shop/v1/shop.descriptor.js"
import { InventoryDefinition, type Item, StorefrontDefinition } from "./gen/shop/v1/shop.js"

const items: ReadonlyArray<Item> = [
  { sku: "apple", name: "Apple", stock: 3n },
  { sku: "pear", name: "Pear", stock: 0n },
  { sku: "plum", name: "Plum", stock: 7n }
]

/** What the Inventory handler of the current scenario observed: its deadline, and when it started. */
interface Probe {
  readonly started: Deferred.Deferred<{ readonly deadline: Option.Option<Date>; readonly at: number }>
  readonly interrupted: Deferred.Deferred<void>
}
let probe: Probe | undefined

const newProbe = Effect.gen(function*() {
  const p: Probe = {
    started: yield* Deferred.make<{ readonly deadline: Option.Option<Date>; readonly at: number }>(),
    interrupted: yield* Deferred.make<void>()
  }
  probe = p
  return p
})

const Inventory = GrpcServer.serve(InventoryDefinition, {
  getItem: (request) => {
    const item = items.find((i) => i.sku === request.sku)
    return item === undefined
      ? Effect.fail(GrpcError.make(GrpcError.Status.NOT_FOUND, `no item ${request.sku}`))
      : Effect.succeed(item)
  },
  listItems: (request) => Stream.fromIterable(items).pipe(Stream.take(request.limit)),
  reserve: () =>
    Effect.gen(function*() {
      const ctx = yield* CallContext.CallContext
      const p = probe!
      yield* Deferred.succeed(p.started, { deadline: ctx.deadline, at: Date.now() })
      return yield* Effect.never
    }).pipe(Effect.onInterrupt(() => probe ? Deferred.succeed(probe.interrupted, undefined) : Effect.void))
})

const Storefront = Layer.unwrap(Effect.gen(function*() {
  const inventory = yield* GrpcClient.make(InventoryDefinition)
  return GrpcServer.serve(StorefrontDefinition, {
    getItem: (request) => inventory.getItem(request),
    listItems: (request) => inventory.listItems(request),
    reserve: (request) => inventory.reserve(request)
  })
}))

const local = { host: "127.0.0.1", port: 0 }

const check = (name: string, ok: boolean, detail: string) =>
  ok ? Effect.sync(() => console.log(`ok - ${name}`)) : Effect.die(new Error(`FAILED - ${name}: ${detail}`))

const program = Effect.gen(function*() {
  const backend = yield* Layer.build(Inventory.pipe(Layer.provideMerge(GrpcServer.layer(local))))
  const backendPort = Context.get(backend, GrpcServer.GrpcServer).port
  const front = yield* Layer.build(
    Layer.mergeAll(Storefront, GrpcHealth.layer, GrpcReflection.layer([shopProto])).pipe(
      Layer.provide(GrpcClient.layerChannel(`127.0.0.1:${backendPort}`)),
      Layer.provideMerge(GrpcServer.layer(local))
    )
  )
  const frontPort = Context.get(front, GrpcServer.GrpcServer).port
  const channel = yield* GrpcClient.makeChannel(`127.0.0.1:${frontPort}`)
  const store = GrpcClient.makeWith(channel, StorefrontDefinition)

  const apple = yield* store.getItem({ sku: "apple" })
  yield* check("unary call through two servers", apple.name === "Apple" && apple.stock === 3n, `${apple.name} ${apple.stock}`)

  const missing = yield* Effect.flip(store.getItem({ sku: "kiwi" }))
  yield* check(
    "NOT_FOUND from the upstream reaches the client",
    missing.code === GrpcError.Status.NOT_FOUND && missing.message === "no item kiwi",
    `${missing.code} ${missing.message}`
  )

  const listed = yield* Stream.runCollect(store.listItems({ limit: 2 }))
  yield* check("server stream", listed.map((i) => i.sku).join(",") === "apple,pear", listed.map((i) => i.sku).join(","))

  const health = GrpcClient.makeWith(channel, GrpcHealth.HealthDefinition)
  const serving = yield* health.check({ service: "shop.v1.Storefront" })
  yield* check("health: the served service is SERVING", serving.status === GrpcHealth.ServingStatus.SERVING, String(serving.status))

  const reflection = GrpcClient.makeWith(channel, ServerReflectionDefinition)
  const [services, symbol] = yield* Stream.runCollect(reflection.serverReflectionInfo(Stream.make(
    { host: "", listServices: "" },
    { host: "", fileContainingSymbol: "shop.v1.Inventory" }
  )))
  const names = (services?.listServicesResponse?.service ?? []).map((s) => s.name).sort().join(",")
  yield* check(
    "reflection lists the served services",
    names === "grpc.health.v1.Health,grpc.reflection.v1.ServerReflection,grpc.reflection.v1alpha.ServerReflection,shop.v1.Storefront",
    names
  )
  const files = symbol?.fileDescriptorResponse?.fileDescriptorProto ?? []
  yield* check(
    "reflection resolves a symbol from the embedded descriptor",
    files.length === 1 && Buffer.from(files[0]!).includes("shop/v1/shop.proto"),
    `${files.length} files`
  )

  // A client cancel interrupts the upstream handler, two hops away.
  const cancelProbe = yield* newProbe
  const call = yield* Effect.forkChild(store.reserve({ sku: "plum", quantity: 1n }))
  yield* Deferred.await(cancelProbe.started)
  yield* Fiber.interrupt(call)
  const cancelled = yield* Deferred.await(cancelProbe.interrupted).pipe(Effect.timeoutOption("5 seconds"))
  yield* check("client cancel interrupts the upstream handler", Option.isSome(cancelled), "upstream still running")

  // The client's deadline reaches the upstream, which is interrupted when it passes.
  const deadlineProbe = yield* newProbe
  const before = Date.now()
  const late = yield* Effect.flip(store.reserve({ sku: "plum", quantity: 1n }, { timeout: "800 millis" }))
  const { deadline: seen, at } = yield* Deferred.await(deadlineProbe.started)
  const upstreamInterrupted = yield* Deferred.await(deadlineProbe.interrupted).pipe(Effect.timeoutOption("5 seconds"))
  // Each hop sends the time left, so the upstream's deadline is the client's
  // (800 ms from its start), moved later only by the time in transit: at or
  // after `before + 800`, at or before `at + 800` (not a fixed tolerance,
  // which a busy machine's transit can exceed).
  yield* check(
    "the deadline reaches the upstream",
    late.code === GrpcError.Status.DEADLINE_EXCEEDED && Option.isSome(seen) &&
      seen.value.getTime() >= before + 800 && seen.value.getTime() <= at + 800 && Option.isSome(upstreamInterrupted),
    `${late.codeName}, upstream deadline ${String(Option.getOrUndefined(seen))} (call at ${before}, seen at ${at})`
  )
})

Effect.runPromise(Effect.scoped(program)).then(
  () => {
    console.log("adopter app: all checks passed")
    process.exit(0)
  },
  (error: unknown) => {
    console.error(String(error))
    process.exit(1)
  }
)
