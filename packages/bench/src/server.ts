/**
 * `pnpm bench:server --port <p>`: the framework's benchmark Echo server on its
 * own (see echo.ts for what each method does). Prints `listening on <port>`
 * once bound.
 *
 * Cost probes (each alone or together):
 * - `--tracing`: GrpcTracing.server on every call, with Effect's default
 *   (native, non-exporting) tracer: the cost of tracing with no exporter.
 * - `--middleware`: one pass-through GrpcMiddleware: the cost of the
 *   middleware seam itself (lazy request decoding, message counters).
 * - `--channelz`: grpc-js's channelz bookkeeping on (`channelz: true`;
 *   grpc-js's default, off in fiber-grpc's), as a plain grpc-js server has it.
 * - `--interceptor`: a pass-through grpc-js server interceptor with a
 *   metadata-phase listener (`serverOptions.interceptors`): what rejecting
 *   calls from grpc-js's metadata phase would cost on every call.
 */
import * as grpc from "@grpc/grpc-js"
import { GrpcMiddleware, GrpcServer, GrpcTracing } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Layer } from "effect"
import { frameworkEcho } from "./echo.js"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const port = Number(arg("port") ?? "50051")
const host = arg("host") ?? "0.0.0.0"
if (!Number.isInteger(port) || port < 0) {
  console.error(`bad --port ${arg("port")}`)
  process.exit(2)
}

const flag = (name: string) => process.argv.includes(`--${name}`)
const passThrough = GrpcMiddleware.make()((effect) => effect)
const middleware = [
  ...(flag("tracing") ? [GrpcTracing.server] : []),
  ...(flag("middleware") ? [passThrough] : [])
]
const metadataPhase: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start: (next) => next({ onReceiveMetadata: (metadata, nextMetadata) => nextMetadata(metadata) })
  })

Layer.mergeAll(GrpcServer.serve(EchoDefinition, frameworkEcho), GrpcServer.layerAnnounce).pipe(
  Layer.provide(GrpcServer.layer({
    host,
    port,
    gracePeriod: "1 second",
    middleware,
    channelz: flag("channelz"),
    ...(flag("interceptor") ? { serverOptions: { interceptors: [metadataPhase] } } : {})
  })),
  GrpcServer.runMain
)
