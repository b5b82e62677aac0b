/**
 * The server under attack, in its own process:
 *
 *   server.ts --impl framework|raw [--port <p>]
 *
 * Both implementations serve the Echo service with the contract of
 * `pnpm bench:server` (UnaryEcho echoes; ServerStreamingEcho with message "N"
 * sends N 64-byte responses as fast as flow control allows; ClientStreamingEcho
 * returns the last message; BidirectionalStreamingEcho echoes each message),
 * plus one defect: a UnaryEcho whose message is "defect" throws in the handler.
 * `framework` is GrpcServer with its default options (what a user gets);
 * `raw` is a plain @grpc/grpc-js server with grpc-js's defaults. Prints
 * `listening on <port>` once bound.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import type { CallContext } from "@fiber-grpc/grpc"
import type { ServiceHandlers } from "@fiber-grpc/grpc/ServiceDefinition"
import * as bench from "@fiber-grpc/bench/echoHandlers"
import { EchoDefinition, type EchoServer, EchoService } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import * as grpc from "@grpc/grpc-js"
import { Effect, Layer } from "effect"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const defect = (message: string): void => {
  if (message === "defect") throw new Error("handler defect (hostile suite)")
}

/** The bench server's Echo, whose UnaryEcho throws for the message "defect". */
export const frameworkEcho: ServiceHandlers<typeof EchoDefinition, CallContext.CallContext> = {
  ...bench.frameworkEcho,
  unaryEcho: (request) =>
    Effect.sync(() => {
      defect(request.message)
      return { message: request.message }
    })
}

/** The same for plain grpc-js. */
export const rawEcho: EchoServer = {
  ...bench.rawEcho,
  unaryEcho: (call, callback) => {
    defect(call.request.message)
    callback(null, { message: call.request.message })
  }
}

// The suite runs this with --expose-gc. SIGUSR2: full garbage collections,
// then report memory, so that "RSS after" tells retained memory from garbage
// not yet collected. SIGHUP: a memory-reducing collection (what V8 runs under
// memory pressure: it also gives back the young generation's spare capacity
// and the pool of freed heap pages), then report RSS: memory that a full
// collection keeps but V8 can give back.
type Gc = (options?: { readonly type: "major"; readonly execution: "sync"; readonly flavor: "last-resort" }) => void
const gc = (globalThis as { gc?: Gc }).gc
process.on("SIGUSR2", () => {
  for (let i = 0; i < 3; i++) gc?.()
  const m = process.memoryUsage()
  console.log(`memory heap ${m.heapUsed} rss ${m.rss} heapTotal ${m.heapTotal}`)
})
process.on("SIGHUP", () => {
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" })
  const m = process.memoryUsage()
  console.log(`reduced heap ${m.heapUsed} rss ${m.rss} heapTotal ${m.heapTotal}`)
})

const port = Number(arg("port") ?? "0")
if (arg("impl") === "raw") {
  const server = new grpc.Server()
  server.addService(EchoService, rawEcho)
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => {
    if (error) throw error
    console.log(`listening on ${bound}`)
  })
  // The same bound as the framework's server: a one-second grace period,
  // then every connection is closed.
  const stop = () => {
    server.tryShutdown(() => process.exit(0))
    setTimeout(() => {
      server.forceShutdown()
      process.exit(0)
    }, 1000).unref()
  }
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
} else {
  Layer.mergeAll(GrpcServer.serve(EchoDefinition, frameworkEcho), GrpcServer.layerAnnounce).pipe(
    Layer.provide(GrpcServer.layer({ host: "127.0.0.1", port, gracePeriod: "1 second" })),
    GrpcServer.runMain
  )
}
