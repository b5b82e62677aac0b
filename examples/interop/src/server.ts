/**
 * The gRPC interop test server: `grpc.testing.TestService` implemented with
 * GrpcServer as ordinary Effect handlers, following the server features of
 * grpc/grpc doc/interop-test-descriptions.md (and grpc-go's interop server
 * where the spec leaves a choice).
 *
 *   pnpm interop:server --port <p> [--use_tls] [--tls_cert_file f --tls_key_file f]
 *
 * Next to the TestService it serves `grpc.health.v1.Health` (GrpcHealth) and
 * server reflection v1 and v1alpha (GrpcReflection, with test.proto's
 * embedded descriptors), so grpcurl and health probes work against it.
 * Prints `listening on <port>` once bound; SIGINT / SIGTERM shut it down
 * gracefully: health turns NOT_SERVING, Watch streams end, calls drain.
 */
import { CallContext, GrpcError, GrpcHealth, GrpcReflection, GrpcServer } from "@fiber-grpc/grpc"
import {
  type Payload,
  PayloadType,
  type ResponseParameters,
  type StreamingOutputCallRequest,
  type StreamingOutputCallResponse
} from "@fiber-grpc/protos/grpc/testing/messages"
import { TestServiceDefinition } from "@fiber-grpc/protos/grpc/testing/test"
import { file as testProto } from "@fiber-grpc/protos/grpc/testing/test.descriptor"
import * as grpc from "@grpc/grpc-js"
import { Duration, Effect, Layer, Stream } from "effect"
import * as fs from "node:fs"
import { ArgsError, parseFlags, parsePort } from "./args.js"
import { certPath, isMain } from "./files.js"

/** Request metadata the server echoes as a response header. */
export const ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
/** Request metadata the server echoes as a trailer. */
export const ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

/**
 * The largest payload this server builds for one response: 1 MiB, three
 * times the largest the interop cases ask for (314,159 bytes). A request
 * decides how much the server allocates, so without a cap one request could
 * make it allocate gigabytes (256 MiB and 2 GiB - 1 were tried).
 */
export const MAX_RESPONSE_SIZE = 1024 * 1024

/**
 * The most payload bytes one request may ask for across all its
 * `response_parameters` (each response is built only when the previous one
 * has been written, so this bounds the work, not the memory).
 */
export const MAX_RESPONSE_BYTES_PER_REQUEST = 16 * 1024 * 1024

const tooLarge = (what: string, size: number, limit: number) =>
  Effect.fail(GrpcError.make(GrpcError.Status.RESOURCE_EXHAUSTED, `${what} of ${size} bytes exceeds this server's limit of ${limit}`))

/**
 * A payload of `size` zero bytes. Only COMPRESSABLE exists in the current
 * proto; anything else is `INVALID_ARGUMENT`, as the spec asks. Sizes above
 * `MAX_RESPONSE_SIZE` are `RESOURCE_EXHAUSTED`.
 */
export const makePayload = (type: PayloadType, size: number): Effect.Effect<Payload, GrpcError.GrpcError> => {
  if (type !== PayloadType.COMPRESSABLE) {
    return Effect.fail(GrpcError.make(GrpcError.Status.INVALID_ARGUMENT, `unsupported payload type: ${type}`))
  }
  if (!Number.isInteger(size) || size < 0) {
    return Effect.fail(GrpcError.make(GrpcError.Status.INVALID_ARGUMENT, `invalid payload size: ${size}`))
  }
  if (size > MAX_RESPONSE_SIZE) return tooLarge("a response payload", size, MAX_RESPONSE_SIZE)
  return Effect.succeed({ type, body: Buffer.alloc(size) })
}

/**
 * Echo Metadata: `x-grpc-test-echo-initial` goes back in the response
 * headers, `x-grpc-test-echo-trailing-bin` in the trailers (which are sent
 * whether the call succeeds or fails).
 */
const echoMetadata = (ctx: CallContext.CallContextShape): Effect.Effect<void> =>
  Effect.gen(function*() {
    const initial = ctx.metadata.get(ECHO_INITIAL_KEY)
    const trailing = ctx.metadata.get(ECHO_TRAILING_KEY)
    if (trailing.length > 0) {
      const trailers = new CallContext.Metadata()
      trailers.set(ECHO_TRAILING_KEY, trailing[0]!)
      yield* ctx.setTrailers(trailers)
    }
    if (initial.length > 0) {
      const headers = new CallContext.Metadata()
      headers.set(ECHO_INITIAL_KEY, initial[0]!)
      yield* ctx.sendHeaders(headers)
    }
  })

/** Echo Status: a non-OK `response_status` becomes the call's status and message. */
const requestedStatus = (
  status: { readonly code: number; readonly message: string } | undefined
): GrpcError.GrpcError | undefined =>
  status !== undefined && status.code !== 0
    // The code goes on the wire as sent; grpc-js carries any number.
    ? GrpcError.make(status.code, status.message)
    : undefined

/** `interval_us` is a sleep before each response, relative to the previous one. */
const sleepMicros = (us: number): Effect.Effect<void> =>
  us > 0 ? Effect.sleep(Duration.micros(BigInt(us))) : Effect.void

/**
 * One response per `ResponseParameters`, in order, each after its interval.
 * Each is emitted as soon as it is made, so it is written before the next
 * interval starts.
 */
const responsesFor = (
  type: PayloadType,
  parameters: ReadonlyArray<ResponseParameters>
): Stream.Stream<StreamingOutputCallResponse, GrpcError.GrpcError> => {
  const total = parameters.reduce((sum, p) => sum + p.size, 0)
  if (total > MAX_RESPONSE_BYTES_PER_REQUEST) {
    return Stream.fromEffect(tooLarge("the responses asked for", total, MAX_RESPONSE_BYTES_PER_REQUEST))
  }
  return Stream.flatMap(
    Stream.fromIterable(parameters),
    (p) =>
      Stream.fromEffect(
        Effect.andThen(sleepMicros(p.intervalUs), makePayload(type, p.size)).pipe(Effect.map((payload) => ({ payload })))
      )
  )
}

/** The responses to one request on FullDuplexCall / HalfDuplexCall. */
const answer = (request: StreamingOutputCallRequest): Stream.Stream<StreamingOutputCallResponse, GrpcError.GrpcError> => {
  const status = requestedStatus(request.responseStatus)
  // The server does not process any message after one that asks for a status.
  return status !== undefined ? Stream.fail(status) : responsesFor(request.responseType, request.responseParameters)
}

/**
 * The TestService. Compression fields (`response_compressed`,
 * `expect_compressed`) are ignored, as grpc-go's server ignores them:
 * grpc-js's server never compresses responses and hides whether a request
 * message was compressed (see the README).
 */
export const TestService = GrpcServer.serve(TestServiceDefinition, {
  emptyCall: (_request, ctx) => Effect.as(echoMetadata(ctx), {}),

  unaryCall: (request, ctx) =>
    Effect.gen(function*() {
      yield* echoMetadata(ctx)
      const status = requestedStatus(request.responseStatus)
      if (status !== undefined) return yield* Effect.fail(status)
      const payload = yield* makePayload(request.responseType, request.responseSize)
      return { payload, username: "", oauthScope: "", serverId: "", grpclbRouteType: 0, hostname: "" }
    }),

  // The content of the request is ignored; the payload is the current time in
  // nanoseconds, so that every response differs. Cache headers let a caching
  // proxy in front keep it for 60 seconds.
  cacheableUnaryCall: (_request, ctx) =>
    Effect.gen(function*() {
      const headers = new CallContext.Metadata()
      headers.set("cache-control", "max-age=60, public")
      yield* ctx.sendHeaders(headers)
      const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n)
      return {
        payload: { type: PayloadType.COMPRESSABLE, body: Buffer.from(nanos.toString()) },
        username: "",
        oauthScope: "",
        serverId: "",
        grpclbRouteType: 0,
        hostname: ""
      }
    }),

  streamingOutputCall: (request, ctx) =>
    Stream.unwrap(Effect.as(echoMetadata(ctx), responsesFor(request.responseType, request.responseParameters))).pipe(
      Stream.concat(Stream.suspend(() => {
        const status = requestedStatus(request.responseStatus)
        return status === undefined ? Stream.empty : Stream.fail(status)
      }))
    ),

  streamingInputCall: (requests) =>
    Stream.runFold(requests, () => 0, (sum, r) => sum + (r.payload?.body.length ?? 0)).pipe(
      Effect.map((aggregatedPayloadSize) => ({ aggregatedPayloadSize }))
    ),

  fullDuplexCall: (requests, ctx) => Stream.unwrap(Effect.as(echoMetadata(ctx), Stream.flatMap(requests, answer))),

  halfDuplexCall: (requests, ctx) =>
    Stream.unwrap(
      Effect.andThen(echoMetadata(ctx), Stream.runCollect(requests)).pipe(
        Effect.map((all) => Stream.flatMap(Stream.fromIterable(all), answer))
      )
    ),

  unimplementedCall: () =>
    Effect.fail(GrpcError.make(GrpcError.Status.UNIMPLEMENTED, "UnimplementedCall is not implemented"))
})

export interface ServerOptions {
  readonly port: number
  /** Default: all interfaces, IPv6 and IPv4 (IPv4 only where IPv6 is unavailable). */
  readonly host?: string | undefined
  readonly credentials?: grpc.ServerCredentials | undefined
  readonly gracePeriod?: Duration.Input | undefined
}

/** The bound server (GrpcServer) with the TestService, health and reflection on it. */
export const layer = (
  options: ServerOptions
): Layer.Layer<GrpcServer.GrpcServer | GrpcHealth.GrpcHealth, GrpcServer.GrpcServerError> => {
  const bind = (host: string) =>
    GrpcServer.make({
      host,
      port: options.port,
      credentials: options.credentials,
      gracePeriod: options.gracePeriod ?? Duration.seconds(2)
    })
  const server = options.host !== undefined
    ? bind(options.host)
    // Fall back to IPv4 only where IPv6 is unavailable; a port in use fails as it is.
    : Effect.catch(bind("::"), (error) => error.message.includes("EADDRINUSE") ? Effect.fail(error) : bind("0.0.0.0"))
  return Layer.mergeAll(TestService, GrpcReflection.layer([testProto])).pipe(
    Layer.provideMerge(GrpcHealth.layer),
    Layer.provideMerge(Layer.effect(GrpcServer.GrpcServer, server))
  )
}

/** TLS credentials from PEM files (by default the test certificate in certs/). */
export const serverCredentials = (certFile?: string, keyFile?: string): grpc.ServerCredentials =>
  grpc.ServerCredentials.createSsl(null, [{
    cert_chain: fs.readFileSync(certFile ?? certPath("server.pem")),
    private_key: fs.readFileSync(keyFile ?? certPath("server.key"))
  }])

const usage = "usage: pnpm interop:server --port <port> [--use_tls] [--tls_cert_file <pem> --tls_key_file <pem>]"

/** Reads the server's flags. */
export const parseServerArgs = (argv: ReadonlyArray<string>): Effect.Effect<ServerOptions, ArgsError> =>
  Effect.try({
    try: () => {
      const flags = parseFlags(argv, { strings: ["port", "tls_cert_file", "tls_key_file"], booleans: ["use_tls"] })
      const port = flags.strings.get("port")
      if (port === undefined) throw new ArgsError(`--port is required\n${usage}`)
      return {
        port: parsePort("port", port),
        credentials: flags.booleans.get("use_tls") === true
          ? serverCredentials(flags.strings.get("tls_cert_file"), flags.strings.get("tls_key_file"))
          : undefined
      }
    },
    catch: (e) => e instanceof ArgsError ? e : new ArgsError(`cannot set up TLS: ${String(e)}`)
  })

/** The whole program as a Layer: parse the flags, bind, serve, print `listening on <port>`. */
export const main = (argv: ReadonlyArray<string>): Layer.Layer<never, ArgsError | GrpcServer.GrpcServerError> =>
  Layer.unwrap(Effect.map(parseServerArgs(argv), (options) => GrpcServer.layerAnnounce.pipe(Layer.provide(layer(options)))))

// Until SIGINT / SIGTERM, then a graceful shutdown and exit code 0.
if (isMain(import.meta.url)) GrpcServer.runMain(main(process.argv.slice(2)))
