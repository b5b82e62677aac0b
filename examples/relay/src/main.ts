/**
 * `pnpm relay --port <p> --upstream <target>`: serves grpc.examples.echo.Echo
 * and forwards every call to the upstream Echo servers. The upstream is any
 * grpc-js target (`host:port`, `dns:///name:port`, `ipv4:a:p1,b:p2`,
 * `unix:/path`), or several `host:port` upstreams (repeat `--upstream`, or
 * separate them with commas; names are looked up once at start); calls are balanced round robin over them and
 * retried on UNAVAILABLE (see `Relay.serviceConfig`). Prints
 * `listening on <port>` once bound; SIGINT/SIGTERM shut it down gracefully.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import { Layer } from "effect"
import { parseArgs } from "node:util"
import * as Relay from "./Relay.js"

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, upstream: { type: "string", multiple: true } }
})
const upstream = await Relay.resolveNames(values.upstream ?? []).then(
  Relay.upstreamTarget,
  (error: Error) => ({ error: `cannot resolve an upstream: ${error.message}` })
)
if ("error" in upstream) {
  console.error(`pnpm relay: ${upstream.error}`)
  console.error("usage: pnpm relay --port <p> --upstream <target> [--upstream <ip:port> ...]")
  process.exit(2)
}

Layer.mergeAll(Relay.layer(upstream.target), GrpcServer.layerAnnounce).pipe(
  Layer.provide(GrpcServer.layer({ port: Number(values.port), gracePeriod: "3 seconds" })),
  GrpcServer.runMain
)
