/**
 * `pnpm relay --port <p> --upstream <host:port>`: serves grpc.examples.echo.Echo
 * and forwards every call to the upstream Echo server. Prints
 * `listening on <port>` once bound; SIGINT/SIGTERM shut it down gracefully.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import { Layer } from "effect"
import { parseArgs } from "node:util"
import * as Relay from "./Relay.js"

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, upstream: { type: "string" } }
})
if (values.upstream === undefined) {
  console.error("usage: pnpm relay --port <p> --upstream <host:port>")
  process.exit(2)
}

Layer.mergeAll(Relay.layer(values.upstream), GrpcServer.layerAnnounce).pipe(
  Layer.provide(GrpcServer.layer({ port: Number(values.port), gracePeriod: "3 seconds" })),
  GrpcServer.runMain
)
