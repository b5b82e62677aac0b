/**
 * The interop client's test cases, as grpc/grpc doc/interop-test-descriptions.md
 * defines them, written with GrpcClient only. Cancellation is fiber
 * interruption (`Fiber.interrupt`) or a Stream that stops early
 * (`Stream.take`); timeouts are the call's own `timeout` option.
 */
import { GrpcClient, GrpcError } from "@fiber-grpc/grpc"
import { Empty } from "@fiber-grpc/protos/grpc/testing/empty"
import {
  PayloadType,
  SimpleRequest,
  type SimpleResponse,
  StreamingInputCallRequest,
  StreamingOutputCallRequest,
  type StreamingOutputCallResponse
} from "@fiber-grpc/protos/grpc/testing/messages"
import { TestServiceDefinition, UnimplementedServiceDefinition } from "@fiber-grpc/protos/grpc/testing/test"
import type * as grpc from "@grpc/grpc-js"
import { type Cause, Context, Data, Deferred, Duration, Effect, Exit, Fiber, Layer, Queue, type Scope, Stream } from "effect"

// Sizes from the spec (and grpc-go's interop client).
const REQUEST_SIZES = [27182, 8, 1828, 45904] as const
const RESPONSE_SIZES = [31415, 9, 2653, 58979] as const
const LARGE_REQUEST_SIZE = 271828
const LARGE_RESPONSE_SIZE = 314159

const ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
const ECHO_INITIAL_VALUE = "test_initial_metadata_value"
const ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
const ECHO_TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab])

const SPECIAL_STATUS_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"

/** How long grpc-js may take to report the end of a call the client cancelled. */
const CALL_END_TIMEOUT = Duration.seconds(5)

/**
 * Where the cases connect, and how. `credentials` and `channelOptions` go to
 * `GrpcClient.makeChannel` unchanged.
 */
export interface Target {
  readonly address: string
  readonly credentials?: grpc.ChannelCredentials | undefined
  readonly channelOptions?: grpc.ChannelOptions | undefined
}

/** The clients the cases use, on one channel to the server under test. */
export class Interop extends Context.Service<Interop, {
  readonly target: Target
  readonly test: GrpcClient.Client<typeof TestServiceDefinition>
  readonly unimplemented: GrpcClient.Client<typeof UnimplementedServiceDefinition>
}>()("@fiber-grpc/example-interop/Interop") {}

export const layer = (target: Target): Layer.Layer<Interop> =>
  Layer.effect(
    Interop,
    Effect.map(
      GrpcClient.makeChannel(target.address, { credentials: target.credentials, channelOptions: target.channelOptions }),
      (channel) =>
        Interop.of({
          target,
          test: GrpcClient.makeWith(channel, TestServiceDefinition),
          unimplemented: GrpcClient.makeWith(channel, UnimplementedServiceDefinition)
        })
    )
  )

/** A case's assertion did not hold. */
export class CaseFailure extends Data.TaggedError("CaseFailure")<{ readonly reason: string }> {}

export type Case = Effect.Effect<void, CaseFailure | GrpcError.GrpcError, Interop | Scope.Scope>

const check = (condition: boolean, reason: () => string): Effect.Effect<void, CaseFailure> =>
  condition ? Effect.void : Effect.fail(new CaseFailure({ reason: reason() }))

const zeros = (size: number) => ({ type: PayloadType.COMPRESSABLE, body: Buffer.alloc(size) })

const checkPayload = (
  what: string,
  payload: { readonly type: PayloadType; readonly body: Buffer } | undefined,
  size: number
): Effect.Effect<void, CaseFailure> =>
  Effect.gen(function*() {
    yield* check(payload !== undefined || size === 0, () => `${what}: no payload`)
    const body = payload?.body ?? Buffer.alloc(0)
    yield* check(payload === undefined || payload.type === PayloadType.COMPRESSABLE, () => `${what}: payload type ${payload?.type}`)
    yield* check(body.length === size, () => `${what}: payload of ${body.length} bytes, want ${size}`)
    yield* check(body.every((b) => b === 0), () => `${what}: payload is not all zeros`)
  })

const largeUnaryRequest = (fields: Partial<SimpleRequest> = {}): SimpleRequest =>
  SimpleRequest.fromPartial({
    responseType: PayloadType.COMPRESSABLE,
    responseSize: LARGE_RESPONSE_SIZE,
    payload: zeros(LARGE_REQUEST_SIZE),
    ...fields
  })

const streamingRequest = (responseSizes: ReadonlyArray<number>, payloadSize?: number): StreamingOutputCallRequest =>
  StreamingOutputCallRequest.fromPartial({
    responseType: PayloadType.COMPRESSABLE,
    responseParameters: responseSizes.map((size) => ({ size })),
    ...(payloadSize === undefined ? {} : { payload: zeros(payloadSize) })
  })

/** The call must fail with `code` (and `message`, when given). */
const expectStatus = <A, R>(
  what: string,
  call: Effect.Effect<A, GrpcError.GrpcError | CaseFailure, R>,
  code: GrpcError.Status,
  message?: string
): Effect.Effect<void, CaseFailure, R> =>
  Effect.exit(call).pipe(Effect.flatMap((exit) => {
    if (Exit.isSuccess(exit)) {
      return Effect.fail(new CaseFailure({ reason: `${what}: succeeded, want ${GrpcError.statusName(code)}` }))
    }
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")
    if (error === undefined || !GrpcError.isGrpcError(error.error)) {
      return error?.error._tag === "CaseFailure"
        ? Effect.fail(error.error)
        : Effect.fail(new CaseFailure({ reason: `${what}: ended without a status` }))
    }
    const e = error.error
    if (e.code !== code) {
      return Effect.fail(
        new CaseFailure({ reason: `${what}: status ${e.codeName} "${e.message}", want ${GrpcError.statusName(code)}` })
      )
    }
    if (message !== undefined && e.message !== message) {
      return Effect.fail(
        new CaseFailure({ reason: `${what}: status message ${JSON.stringify(e.message)}, want ${JSON.stringify(message)}` })
      )
    }
    return Effect.void
  }))

/** Completes `done` when grpc-js reports the call's end (its status, with trailers). */
const onEnd = (done: Deferred.Deferred<void>) => ({ onTrailers: () => Deferred.doneUnsafe(done, Exit.void) })

const awaitCallEnd = (what: string, done: Deferred.Deferred<void>): Effect.Effect<void, CaseFailure> =>
  Deferred.await(done).pipe(
    Effect.timeoutOrElse({
      duration: CALL_END_TIMEOUT,
      orElse: () => Effect.fail(new CaseFailure({ reason: `${what}: the call did not end after it was cancelled` }))
    })
  )

const emptyUnary: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const response = yield* test.emptyCall(Empty.fromPartial({}))
  yield* check(response !== undefined && response !== null, () => "EmptyCall returned no message")
})

const largeUnary: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const response = yield* test.unaryCall(largeUnaryRequest())
  yield* checkPayload("UnaryCall", response.payload, LARGE_RESPONSE_SIZE)
})

const clientStreaming: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const requests = Stream.fromIterable(REQUEST_SIZES).pipe(
    Stream.map((size) => StreamingInputCallRequest.fromPartial({ payload: zeros(size) }))
  )
  const response = yield* test.streamingInputCall(requests)
  const want = REQUEST_SIZES.reduce((a, b) => a + b, 0)
  yield* check(
    response.aggregatedPayloadSize === want,
    () => `aggregated_payload_size ${response.aggregatedPayloadSize}, want ${want}`
  )
})

const checkResponses = (
  responses: ReadonlyArray<StreamingOutputCallResponse>,
  sizes: ReadonlyArray<number>
): Effect.Effect<void, CaseFailure> =>
  Effect.gen(function*() {
    yield* check(responses.length === sizes.length, () => `${responses.length} responses, want ${sizes.length}`)
    for (let i = 0; i < sizes.length; i++) {
      yield* checkPayload(`response ${i + 1}`, responses[i]!.payload, sizes[i]!)
    }
  })

const serverStreaming: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const responses = yield* Stream.runCollect(test.streamingOutputCall(streamingRequest(RESPONSE_SIZES)))
  yield* checkResponses(responses, RESPONSE_SIZES)
})

/** Each request is sent only after the previous one's reply arrived; half-close after the fourth reply. */
const pingPong: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const requests = yield* Queue.unbounded<StreamingOutputCallRequest, Cause.Done>()
  const request = (i: number) => streamingRequest([RESPONSE_SIZES[i]!], REQUEST_SIZES[i]!)
  yield* Queue.offer(requests, request(0))
  let received = 0
  yield* test.fullDuplexCall(Stream.fromQueue(requests)).pipe(
    Stream.runForEach((response) =>
      Effect.gen(function*() {
        yield* check(received < RESPONSE_SIZES.length, () => `more than ${RESPONSE_SIZES.length} responses`)
        yield* checkPayload(`response ${received + 1}`, response.payload, RESPONSE_SIZES[received]!)
        received++
        if (received < REQUEST_SIZES.length) yield* Queue.offer(requests, request(received))
        else yield* Queue.end(requests)
      })
    )
  )
  yield* check(received === RESPONSE_SIZES.length, () => `${received} responses, want ${RESPONSE_SIZES.length}`)
})

const emptyStream: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const responses = yield* Stream.runCollect(test.fullDuplexCall(Stream.empty))
  yield* check(responses.length === 0, () => `${responses.length} responses, want 0`)
})

/**
 * Starts StreamingInputCall with a request Stream that never produces, and
 * interrupts the fiber running the call once the call has started (its
 * request Stream is being read). The interruption cancels the call on the wire.
 */
const cancelAfterBegin: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const started = yield* Deferred.make<void>()
  const ended = yield* Deferred.make<void>()
  const requests: Stream.Stream<StreamingInputCallRequest> = Stream.fromEffect(Deferred.succeed(started, undefined)).pipe(
    Stream.flatMap(() => Stream.never)
  )
  const call = yield* Effect.forkChild(test.streamingInputCall(requests, onEnd(ended)), { startImmediately: true })
  yield* Deferred.await(started)
  yield* Fiber.interrupt(call)
  const exit = yield* Fiber.await(call)
  yield* check(
    Exit.isFailure(exit) && Exit.hasInterrupts(exit) && exit.cause.reasons.every((r) => r._tag === "Interrupt"),
    () => `the call ended with ${Exit.isSuccess(exit) ? "a response" : "an error"} instead of being cancelled`
  )
  yield* awaitCallEnd("StreamingInputCall", ended)
})

/**
 * FullDuplexCall whose request Stream stays open; the response Stream is cut
 * with `Stream.take(1)`, which cancels the call once the first reply is in.
 */
const cancelAfterFirstResponse: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const ended = yield* Deferred.make<void>()
  const requests = Stream.concat(Stream.make(streamingRequest([31415], 27182)), Stream.never)
  const responses = yield* test.fullDuplexCall(requests, onEnd(ended)).pipe(Stream.take(1), Stream.runCollect)
  yield* checkResponses(responses, [31415])
  yield* awaitCallEnd("FullDuplexCall", ended)
})

/** A 1 ms deadline on a FullDuplexCall the server never answers. */
const timeoutOnSleepingServer: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const requests = Stream.concat(
    Stream.make(StreamingOutputCallRequest.fromPartial({ responseType: PayloadType.COMPRESSABLE, payload: zeros(27182) })),
    Stream.never
  )
  yield* expectStatus(
    "FullDuplexCall",
    Stream.runDrain(test.fullDuplexCall(requests, { timeout: Duration.millis(1) })),
    GrpcError.Status.DEADLINE_EXCEEDED
  )
})

const customMetadata: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const metadata = new GrpcError.Metadata()
  metadata.set(ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE)
  metadata.set(ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE)
  const checkEchoed = (what: string, headers: GrpcError.Metadata | undefined, trailers: GrpcError.Metadata | undefined) =>
    Effect.gen(function*() {
      const initial = headers?.get(ECHO_INITIAL_KEY) ?? []
      yield* check(
        initial.length === 1 && initial[0] === ECHO_INITIAL_VALUE,
        () => `${what}: header ${ECHO_INITIAL_KEY} = ${JSON.stringify(initial.map(String))}, want ["${ECHO_INITIAL_VALUE}"]`
      )
      const trailing = trailers?.get(ECHO_TRAILING_KEY) ?? []
      yield* check(
        trailing.length === 1 && Buffer.isBuffer(trailing[0]) && trailing[0].equals(ECHO_TRAILING_VALUE),
        () =>
          `${what}: trailer ${ECHO_TRAILING_KEY} = ${
            JSON.stringify(trailing.map((v) => Buffer.isBuffer(v) ? v.toString("hex") : v))
          }, want ["ababab"]`
      )
    })

  let unaryHeaders: GrpcError.Metadata | undefined
  let unaryTrailers: GrpcError.Metadata | undefined
  const response = yield* test.unaryCall(largeUnaryRequest(), {
    metadata,
    onHeaders: (h) => (unaryHeaders = h),
    onTrailers: (t) => (unaryTrailers = t)
  })
  yield* checkPayload("UnaryCall", response.payload, LARGE_RESPONSE_SIZE)
  yield* checkEchoed("UnaryCall", unaryHeaders, unaryTrailers)

  let streamHeaders: GrpcError.Metadata | undefined
  let streamTrailers: GrpcError.Metadata | undefined
  const responses = yield* Stream.runCollect(test.fullDuplexCall(
    Stream.make(streamingRequest([LARGE_RESPONSE_SIZE], LARGE_REQUEST_SIZE)),
    { metadata, onHeaders: (h) => (streamHeaders = h), onTrailers: (t) => (streamTrailers = t) }
  ))
  yield* checkResponses(responses, [LARGE_RESPONSE_SIZE])
  yield* checkEchoed("FullDuplexCall", streamHeaders, streamTrailers)
})

const statusCodeAndMessage: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  const responseStatus = { code: 2, message: "test status message" }
  yield* expectStatus(
    "UnaryCall",
    test.unaryCall(SimpleRequest.fromPartial({ responseStatus })),
    GrpcError.Status.UNKNOWN,
    responseStatus.message
  )
  yield* expectStatus(
    "FullDuplexCall",
    Stream.runDrain(test.fullDuplexCall(Stream.make(StreamingOutputCallRequest.fromPartial({ responseStatus })))),
    GrpcError.Status.UNKNOWN,
    responseStatus.message
  )
})

const specialStatusMessage: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  yield* expectStatus(
    "UnaryCall",
    test.unaryCall(
      SimpleRequest.fromPartial({ responseStatus: { code: 2, message: SPECIAL_STATUS_MESSAGE } }),
      { timeout: Duration.seconds(10) }
    ),
    GrpcError.Status.UNKNOWN,
    SPECIAL_STATUS_MESSAGE
  )
})

const unimplementedMethod: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  yield* expectStatus("TestService/UnimplementedCall", test.unimplementedCall({}), GrpcError.Status.UNIMPLEMENTED)
})

const unimplementedService: Case = Effect.gen(function*() {
  const { unimplemented } = yield* Interop
  yield* expectStatus(
    "UnimplementedService/UnimplementedCall",
    unimplemented.unimplementedCall({}),
    GrpcError.Status.UNIMPLEMENTED
  )
})

/** grpc-js's value for gzip in `grpc.default_compression_algorithm`. */
const GZIP = 2

/**
 * grpc-js compresses per channel, not per call: the compressed call goes
 * through a second channel with `grpc.default_compression_algorithm` = gzip.
 */
const clientCompressedUnary: Case = Effect.gen(function*() {
  const { target, test } = yield* Interop
  const probe = largeUnaryRequest({ expectCompressed: { value: true } })
  yield* expectStatus("probe (uncompressed, expect_compressed=true)", test.unaryCall(probe), GrpcError.Status.INVALID_ARGUMENT)
    .pipe(Effect.mapError((e) => new CaseFailure({ reason: `${e.reason} (the server must implement CompressedRequest)` })))
  const gzipChannel = yield* GrpcClient.makeChannel(target.address, {
    credentials: target.credentials,
    channelOptions: { ...target.channelOptions, "grpc.default_compression_algorithm": GZIP }
  })
  const compressed: SimpleResponse = yield* GrpcClient.makeWith(gzipChannel, TestServiceDefinition).unaryCall(probe)
  yield* checkPayload("compressed UnaryCall", compressed.payload, LARGE_RESPONSE_SIZE)
  const plain = yield* test.unaryCall(largeUnaryRequest({ expectCompressed: { value: false } }))
  yield* checkPayload("uncompressed UnaryCall", plain.payload, LARGE_RESPONSE_SIZE)
})

/**
 * The compressed flag of a received message is not visible through grpc-js,
 * so this checks only that both calls succeed with the right payload.
 */
const serverCompressedUnary: Case = Effect.gen(function*() {
  const { test } = yield* Interop
  for (const value of [true, false]) {
    const response = yield* test.unaryCall(largeUnaryRequest({ responseCompressed: { value } }))
    yield* checkPayload(`UnaryCall (response_compressed=${value})`, response.payload, LARGE_RESPONSE_SIZE)
  }
})

/** Every case, by its official name. */
export const cases: Readonly<Record<string, Case>> = {
  empty_unary: emptyUnary,
  large_unary: largeUnary,
  client_streaming: clientStreaming,
  server_streaming: serverStreaming,
  ping_pong: pingPong,
  empty_stream: emptyStream,
  cancel_after_begin: cancelAfterBegin,
  cancel_after_first_response: cancelAfterFirstResponse,
  timeout_on_sleeping_server: timeoutOnSleepingServer,
  custom_metadata: customMetadata,
  status_code_and_message: statusCodeAndMessage,
  special_status_message: specialStatusMessage,
  unimplemented_method: unimplementedMethod,
  unimplemented_service: unimplementedService,
  client_compressed_unary: clientCompressedUnary,
  server_compressed_unary: serverCompressedUnary
}

/**
 * What `--test_case all` runs: every case above except
 * client_compressed_unary, which needs a server that can tell whether a
 * request was compressed (CompressedRequest). grpc-js servers, this one
 * included, cannot, and grpc-go's does not; run it by name against a server
 * that does (C++, Java).
 */
export const allCases: ReadonlyArray<string> = Object.keys(cases).filter((name) => name !== "client_compressed_unary")

/** What this client cannot express with grpc-js, printed before the results. */
export const notes: ReadonlyArray<string> = [
  "server_compressed_unary: grpc-js does not expose whether a received message was compressed; only success and payload size are checked",
  "client_compressed_unary: not in 'all': needs a server that implements CompressedRequest (grpc-js servers cannot; grpc-go's does not); run it by name",
  "client_compressed_streaming, server_compressed_streaming: not implemented: grpc-js cannot set compression per message"
]

/** The outcome of one case. */
export interface CaseResult {
  readonly name: string
  /** Undefined when the case passed. */
  readonly failure: string | undefined
}

const describeCause = (cause: Cause.Cause<CaseFailure | GrpcError.GrpcError>): string => {
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") {
      const error = reason.error
      return error._tag === "CaseFailure" ? error.reason : `unexpected status ${error.codeName}: ${JSON.stringify(error.message)}`
    }
  }
  for (const reason of cause.reasons) {
    if (reason._tag === "Die") return `defect: ${String(reason.defect)}`
  }
  return "interrupted"
}

/** Runs one case with a time limit, in its own Scope. */
export const runCase = (name: string, timeout: Duration.Input = Duration.seconds(30)): Effect.Effect<CaseResult, never, Interop> => {
  const body = cases[name]
  if (body === undefined) return Effect.succeed({ name, failure: "unknown test case" })
  return Effect.scoped(body).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new CaseFailure({ reason: `did not finish within ${Duration.format(Duration.fromInputUnsafe(timeout))}` }))
    }),
    Effect.exit,
    Effect.map((exit): CaseResult => ({ name, failure: Exit.isSuccess(exit) ? undefined : describeCause(exit.cause) }))
  )
}
