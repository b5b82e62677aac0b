/**
 * `pnpm hash-finder:server --port <p> [--maximum-hashes <n>]`
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import { Layer } from "effect"
import { parseArgs } from "node:util"
import * as HashFinder from "./HashFinder.js"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "50051" },
    "maximum-hashes": { type: "string", default: "1000000" }
  }
})

Layer.mergeAll(HashFinder.layer({ maximumHashes: Number(values["maximum-hashes"]) }), GrpcServer.layerAnnounce).pipe(
  Layer.provide(GrpcServer.layer({ port: Number(values.port), gracePeriod: "2 seconds" })),
  GrpcServer.runMain
)
