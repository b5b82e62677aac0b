/**
 * An Echo relay: each of the four methods is forwarded to an upstream Echo
 * server with GrpcClient. There is no cancellation or deadline code here.
 * The handler fibers are interrupted when their calls end early, the upstream
 * calls are their children, and their deadlines follow the incoming calls.
 */
import { GrpcClient, GrpcServer } from "@fiber-grpc/grpc"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect, Layer } from "effect"

/** Serves Echo on the GrpcServer in context, relaying to `upstream` (`host:port`). */
export const layer = (upstream: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const echo = yield* GrpcClient.make(EchoDefinition)
    return GrpcServer.serve(EchoDefinition, {
      unaryEcho: (request) => echo.unaryEcho(request),
      serverStreamingEcho: (request) => echo.serverStreamingEcho(request),
      clientStreamingEcho: (requests) => echo.clientStreamingEcho(requests),
      bidirectionalStreamingEcho: (requests) => echo.bidirectionalStreamingEcho(requests)
    })
  })).pipe(Layer.provide(GrpcClient.layerChannel(upstream)))
