/**
 * An Echo relay: each of the four methods is forwarded to an upstream Echo
 * server with GrpcClient. There is no cancellation or deadline code here.
 * The handler fibers are interrupted when their calls end early, the upstream
 * calls are their children, and their deadlines follow the incoming calls.
 *
 * The upstream is any grpc-js target. Calls are balanced round robin over
 * its addresses, and an attempt that fails with UNAVAILABLE (a backend that
 * died or is draining) is retried on the next backend, per `serviceConfig`.
 *
 * The relay continues its callers' traces: GrpcTracing reads the incoming
 * `traceparent`/`tracestate`, and the upstream call carries them on with the
 * relay's own client span as the parent (same trace id, new parent span id).
 */
import { GrpcClient, GrpcServer, GrpcTracing, ServiceConfig } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect, Layer } from "effect"
import { lookup } from "node:dns/promises"

/**
 * The relay's upstream policy: round robin over every address of the target;
 * each Echo method (all four are idempotent) is tried up to 3 times when an
 * attempt fails with UNAVAILABLE before any response arrived, with backoff
 * up to 50 ms, 100 ms, ... 500 ms (or the upstream's `grpc-retry-pushback-ms`),
 * within the caller's deadline. Retries stop while more than half of 1000
 * tokens are spent (a failed attempt costs one, a success returns 0.1): a
 * backend dying under load is absorbed, while a lasting outage of the whole
 * upstream does not triple the load on it.
 */
export const serviceConfig: ServiceConfig.ServiceConfig = {
  loadBalancing: "round_robin",
  methods: [{
    names: ServiceConfig.service(EchoDefinition),
    retry: {
      maxAttempts: 3,
      initialBackoff: "50 millis",
      maxBackoff: "500 millis",
      backoffMultiplier: 2,
      retryableStatusCodes: ["UNAVAILABLE"]
    }
  }],
  retryThrottling: { maxTokens: 1000, tokenRatio: 0.1 }
}

/** Serves Echo on the GrpcServer in context, relaying to `upstream` (a grpc-js target). */
export const layer = (upstream: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const echo = yield* GrpcClient.make(EchoDefinition, { middleware: [GrpcTracing.client] })
    return GrpcServer.serve(EchoDefinition, {
      unaryEcho: (request) => echo.unaryEcho(request),
      serverStreamingEcho: (request) => echo.serverStreamingEcho(request),
      clientStreamingEcho: (requests) => echo.clientStreamingEcho(requests),
      bidirectionalStreamingEcho: (requests) => echo.bidirectionalStreamingEcho(requests)
    }, { middleware: [GrpcTracing.server] })
  })).pipe(Layer.provide(GrpcClient.layerChannel(upstream, { serviceConfig })))

const schemes = /^(dns|ipv4|ipv6|unix|unix-abstract|xds|vsock):/

const entries = (values: ReadonlyArray<string>): Array<string> =>
  values.flatMap((v) => schemes.test(v) ? [v] : v.split(",")).map((v) => v.trim()).filter((v) => v !== "")

/**
 * Several upstreams given by name (`localhost:50051,localhost:50052`) are
 * looked up once, here (IPv4 first), because a grpc-js target lists either
 * one name or several addresses. One upstream is left to grpc-js, which
 * resolves it, and re-resolves it as connections come and go.
 */
export const resolveNames = async (values: ReadonlyArray<string>): Promise<Array<string>> => {
  const all = entries(values)
  if (all.length < 2) return all
  return Promise.all(all.map(async (entry) => {
    const match = /^([^:[\]]+):(\d+)$/.exec(entry)
    if (match === null || /^\d{1,3}(\.\d{1,3}){3}$/.test(match[1]!)) return entry
    const { address, family } = await lookup(match[1]!, { family: 4 }).catch(() => lookup(match[1]!))
    return family === 6 ? `[${address}]:${match[2]}` : `${address}:${match[2]}`
  }))
}

/**
 * The grpc-js target for the `--upstream` values: one target (`host:port`,
 * `dns:///name:port`, `ipv4:a:p1,b:p2`, `unix:/path`, ...) passes through;
 * several `ip:port` addresses (in several flags or comma-separated) become
 * one `ipv4:` or `ipv6:` target.
 */
export const upstreamTarget = (values: ReadonlyArray<string>): { target: string } | { error: string } => {
  const all = entries(values)
  if (all.length === 0) return { error: "no upstream given" }
  if (all.length === 1) return { target: all[0]! }
  if (all.every((a) => /^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(a))) return { target: `ipv4:${all.join(",")}` }
  if (all.every((a) => /^\[[0-9a-fA-F:.]+\]:\d+$/.test(a))) return { target: `ipv6:${all.join(",")}` }
  return {
    error: `several upstreams must all be IPv4 or all IPv6 host:port pairs (got ${all.join(", ")}); ` +
      "for a DNS name with several addresses, give one target: dns:///name:port"
  }
}
