/**
 * `pnpm bench:server --port <p>`: the framework's benchmark Echo server on its
 * own (see echo.ts for what each method does). Prints `listening on <port>`
 * once bound.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
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

Layer.mergeAll(GrpcServer.serve(EchoDefinition, frameworkEcho), GrpcServer.layerAnnounce).pipe(
  Layer.provide(GrpcServer.layer({ host, port, gracePeriod: "1 second" })),
  GrpcServer.runMain
)
