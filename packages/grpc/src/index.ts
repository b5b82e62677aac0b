/**
 * Effect-native gRPC on @grpc/grpc-js.
 *
 * @since 0.1.0
 */
export * as CallContext from "./CallContext.js"
export * as GrpcError from "./GrpcError.js"
export * as GrpcServer from "./GrpcServer.js"
export * as ServiceDefinition from "./ServiceDefinition.js"
export * as GrpcClient from "./GrpcClient.js"
export * as GrpcTest from "./GrpcTest.js"
export * as GrpcHealth from "./GrpcHealth.js"
export * as GrpcReflection from "./GrpcReflection.js"
export * as ServiceConfig from "./ServiceConfig.js"
export * as GrpcMiddleware from "./GrpcMiddleware.js"
export * as ErrorDetails from "./ErrorDetails.js"
export * as GrpcTracing from "./GrpcTracing.js"
export * as GrpcMetrics from "./GrpcMetrics.js"
