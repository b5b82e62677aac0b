import { assert, describe, it } from "@effect/vitest"
import {
  PayloadType,
  SimpleRequest,
  StreamingOutputCallRequest,
  type StreamingOutputCallResponse
} from "@fiber-grpc/protos/grpc/testing/messages"
import { TestServiceClient } from "@fiber-grpc/protos/grpc/testing/test"
import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { parseFlags } from "../src/args.js"
import { allCases, cases } from "../src/cases.js"
import { parseClientArgs, runAll, targetOf } from "../src/client.js"
import { MAX_RESPONSE_SIZE, serverCredentials } from "../src/server.js"
import { rawServer, startServer } from "./helpers.js"

const insecure = (port: number) => ({ address: `127.0.0.1:${port}`, credentials: grpc.credentials.createInsecure() })

/** Runs cases and returns the printed lines, failing the test on any FAIL. */
const expectAllPass = (target: Parameters<typeof runAll>[0], names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const results = yield* runAll(target, names, (line) => Effect.sync(() => lines.push(line)))
    assert.deepStrictEqual(lines, names.map((name) => `PASS ${name}`))
    assert.strictEqual(results.length, names.length)
  })

describe("our client against our server", () => {
  it.live("every case in 'all' passes", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      yield* expectAllPass(insecure(server.port), allCases)
      // Every handler has ended, cancelled ones included.
      yield* server.awaitIdle
    }))

  it.live("client_compressed_unary fails with a clear reason against a server without CompressedRequest", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const lines: Array<string> = []
      yield* runAll(insecure(server.port), ["client_compressed_unary"], (line) => Effect.sync(() => lines.push(line)))
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^FAIL client_compressed_unary .*INVALID_ARGUMENT.*CompressedRequest/)
    }))

  it.live("over TLS, with the test CA and foo.test.google.fr as the host override", () =>
    Effect.gen(function*() {
      const server = yield* startServer(serverCredentials())
      const target = targetOf(parseClientArgs([
        "--server_host=127.0.0.1",
        `--server_port=${server.port}`,
        "--use_tls",
        "--use_test_ca",
        "--server_host_override",
        "foo.test.google.fr"
      ]))
      yield* expectAllPass(target, ["empty_unary", "large_unary", "ping_pong", "custom_metadata", "cancel_after_first_response"])
      // Without the test CA, the server's certificate is not trusted. (The
      // override is a host name: grpc-js sends an IP target as the TLS
      // server name, which Node warns about as DEP0123, grpc/grpc-node#1919.)
      const lines: Array<string> = []
      yield* runAll(
        targetOf(parseClientArgs([
          "--server_host",
          "127.0.0.1",
          "--server_port",
          String(server.port),
          "--use_tls",
          "true",
          "--server_host_override",
          "localhost"
        ])),
        ["empty_unary"],
        (line) => Effect.sync(() => lines.push(line))
      )
      assert.match(lines[0]!, /^FAIL empty_unary unexpected status UNAVAILABLE/)
    }))
})

describe("our client against a plain grpc-js TestService", () => {
  it.live("every case in 'all' passes", () =>
    Effect.gen(function*() {
      const { port } = yield* rawServer
      yield* expectAllPass(insecure(port), allCases)
    }))
})

/** A plain grpc-js client on our server, for the test's Scope. */
const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => new TestServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (client) => Effect.sync(() => client.close())
  )

interface Ended {
  readonly code: grpc.status
  readonly details: string
  readonly headers: grpc.Metadata | undefined
  readonly trailers: grpc.Metadata
  readonly messages: ReadonlyArray<StreamingOutputCallResponse>
}

/** Follows a raw server-streaming or bidi call to its status. */
const ended = (
  call: grpc.ClientReadableStream<StreamingOutputCallResponse> | grpc.ClientDuplexStream<StreamingOutputCallRequest, StreamingOutputCallResponse>,
  onData?: () => void
) =>
  Effect.callback<Ended>((resume) => {
    let headers: grpc.Metadata | undefined
    const messages: Array<StreamingOutputCallResponse> = []
    call.on("metadata", (m) => (headers = m))
    call.on("data", (m: StreamingOutputCallResponse) => {
      messages.push(m)
      onData?.()
    })
    call.on("error", () => {})
    call.on("status", (s) =>
      resume(Effect.succeed({ code: s.code, details: s.details, headers, trailers: s.metadata, messages })))
  })

const echoMetadata = () => {
  const md = new grpc.Metadata()
  md.set("x-grpc-test-echo-initial", "test_initial_metadata_value")
  md.set("x-grpc-test-echo-trailing-bin", Buffer.from([0xab, 0xab, 0xab]))
  return md
}

describe("a plain grpc-js client against our server", () => {
  it.live("cancel after begin: CANCELLED, and the handler is interrupted", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const status = yield* Effect.callback<grpc.StatusObject>((resume) => {
        const call = client.streamingInputCall(() => {})
        call.on("error", () => {})
        call.on("status", (s) => resume(Effect.succeed(s)))
        call.on("metadata", () => {})
        call.cancel()
      })
      assert.strictEqual(status.code, grpc.status.CANCELLED)
      yield* server.awaitIdle
    }))

  it.live("cancel after first response: CANCELLED after one message; the handler ends", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const call = client.fullDuplexCall()
      const firstReply = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(ended(call, () => Deferred.doneUnsafe(firstReply, Exit.void)), {
        startImmediately: true
      })
      call.write(StreamingOutputCallRequest.fromPartial({ responseType: PayloadType.COMPRESSABLE, responseParameters: [{ size: 31415, intervalUs: 0 }], payload: { type: 0, body: Buffer.alloc(27182) } }))
      yield* Deferred.await(firstReply)
      call.cancel()
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result.code, grpc.status.CANCELLED)
      assert.strictEqual(result.messages.length, 1)
      assert.strictEqual(result.messages[0]!.payload?.body.length, 31415)
      yield* server.awaitIdle
    }))

  it.live("timeout on sleeping server: DEADLINE_EXCEEDED; the handler is interrupted", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const call = client.fullDuplexCall({ deadline: Date.now() + 1 })
      call.write(StreamingOutputCallRequest.fromPartial({ responseType: PayloadType.COMPRESSABLE, responseParameters: [], payload: { type: 0, body: Buffer.alloc(27182) } }))
      const result = yield* ended(call)
      assert.strictEqual(result.code, grpc.status.DEADLINE_EXCEEDED)
      yield* server.awaitIdle
    }))

  it.live("custom metadata is echoed in headers and trailers, unary and bidi", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const unary = yield* Effect.callback<{ status: grpc.StatusObject; headers: grpc.Metadata | undefined; size: number }>(
        (resume) => {
          let headers: grpc.Metadata | undefined
          let size = -1
          const call = client.unaryCall(
            SimpleRequest.fromPartial({ responseType: 0, responseSize: 314159, payload: { type: 0, body: Buffer.alloc(271828) } }),
            echoMetadata(),
            (_e, r) => (size = r?.payload?.body.length ?? -1)
          )
          call.on("metadata", (m) => (headers = m))
          call.on("status", (status) => resume(Effect.succeed({ status, headers, size })))
        }
      )
      assert.strictEqual(unary.status.code, grpc.status.OK)
      assert.strictEqual(unary.size, 314159)
      assert.deepStrictEqual(unary.headers?.get("x-grpc-test-echo-initial"), ["test_initial_metadata_value"])
      assert.deepStrictEqual(unary.status.metadata.get("x-grpc-test-echo-trailing-bin"), [Buffer.from([0xab, 0xab, 0xab])])

      const call = client.fullDuplexCall(echoMetadata())
      call.write(StreamingOutputCallRequest.fromPartial({ responseType: 0, responseParameters: [{ size: 314159, intervalUs: 0 }], payload: { type: 0, body: Buffer.alloc(271828) } }))
      call.end()
      const bidi = yield* ended(call)
      assert.strictEqual(bidi.code, grpc.status.OK)
      assert.strictEqual(bidi.messages.length, 1)
      assert.deepStrictEqual(bidi.headers?.get("x-grpc-test-echo-initial"), ["test_initial_metadata_value"])
      assert.deepStrictEqual(bidi.trailers.get("x-grpc-test-echo-trailing-bin"), [Buffer.from([0xab, 0xab, 0xab])])
    }))

  it.live("the response sizes a request may ask for are capped: 256 MiB and 2 GiB - 1 get RESOURCE_EXHAUSTED without being built", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const rssBefore = process.memoryUsage().rss
      const unary = (responseSize: number) =>
        Effect.callback<grpc.StatusObject>((resume) => {
          const call = client.unaryCall(SimpleRequest.fromPartial({ responseType: 0, responseSize }), () => {})
          call.on("status", (s) => resume(Effect.succeed(s)))
        })
      for (const size of [256 * 1024 * 1024, 2 ** 31 - 1]) {
        const status = yield* unary(size)
        assert.strictEqual(status.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.include(status.details, `${size} bytes exceeds this server's limit of ${MAX_RESPONSE_SIZE}`)
      }
      const call = client.streamingOutputCall(
        StreamingOutputCallRequest.fromPartial({ responseParameters: Array.from({ length: 20 }, () => ({ size: MAX_RESPONSE_SIZE })) })
      )
      const streamed = yield* ended(call)
      assert.strictEqual(streamed.code, grpc.status.RESOURCE_EXHAUSTED)
      assert.strictEqual(streamed.messages.length, 0)
      // Nothing near the sizes asked for was allocated (the server runs in this process).
      assert.isBelow(process.memoryUsage().rss - rssBefore, 128 * 1024 * 1024)
      assert.strictEqual((yield* unary(MAX_RESPONSE_SIZE)).code, grpc.status.OK)
    }))

  it.live("status code and message, including whitespace and non-BMP Unicode", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const unary = (message: string) =>
        Effect.callback<grpc.StatusObject>((resume) => {
          const call = client.unaryCall(SimpleRequest.fromPartial({ responseStatus: { code: 2, message } }), () => {})
          call.on("status", (s) => resume(Effect.succeed(s)))
        })
      const plain = yield* unary("test status message")
      assert.strictEqual(plain.code, grpc.status.UNKNOWN)
      assert.strictEqual(plain.details, "test status message")
      const special = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
      assert.strictEqual((yield* unary(special)).details, special)

      const call = client.fullDuplexCall()
      call.write(StreamingOutputCallRequest.fromPartial({ responseParameters: [], responseStatus: { code: 2, message: "test status message" } }))
      call.end()
      const bidi = yield* ended(call)
      assert.strictEqual(bidi.code, grpc.status.UNKNOWN)
      assert.strictEqual(bidi.details, "test status message")
    }))

  it.live("interval_us spaces the streamed responses", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const started = Date.now()
      const arrivals: Array<number> = []
      yield* Effect.callback<void>((resume) => {
        const call = client.streamingOutputCall(StreamingOutputCallRequest.fromPartial({
          responseType: 0,
          responseParameters: [{ size: 1, intervalUs: 0 }, { size: 2, intervalUs: 100_000 }, { size: 3, intervalUs: 100_000 }]
        }))
        call.on("data", () => arrivals.push(Date.now() - started))
        call.on("error", () => {})
        call.on("status", () => resume(Effect.void))
      })
      assert.strictEqual(arrivals.length, 3)
      // Each response waits for its own interval after the previous one was sent,
      // so the second cannot arrive before 100 ms nor the third before 200 ms.
      // Gaps between arrivals are not asserted: a late first delivery on a busy
      // machine shortens the next gap without the server having skipped a wait.
      // (Node timers may fire up to 1 ms early, hence the small margin.)
      assert.isAtLeast(arrivals[1]!, 98)
      assert.isAtLeast(arrivals[2]!, 198)
    }))

  it.live("UnimplementedCall and UnimplementedService answer UNIMPLEMENTED", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const client = yield* rawClient(server.port)
      const status = yield* Effect.callback<grpc.StatusObject>((resume) => {
        const call = client.unimplementedCall({}, () => {})
        call.on("status", (s) => resume(Effect.succeed(s)))
      })
      assert.strictEqual(status.code, grpc.status.UNIMPLEMENTED)
      const raw = client.makeUnaryRequest(
        "/grpc.testing.UnimplementedService/UnimplementedCall",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        () => {}
      )
      const other = yield* Effect.callback<grpc.StatusObject>((resume) => {
        raw.on("status", (s) => resume(Effect.succeed(s)))
      })
      assert.strictEqual(other.code, grpc.status.UNIMPLEMENTED)
    }))
})

describe("flags", () => {
  it("accept --flag value, --flag=value, bare booleans and a stray --", () => {
    const flags = parseFlags(["--", "--port", "8080", "--use_tls", "--name=x"], { strings: ["port", "name"], booleans: ["use_tls"] })
    assert.strictEqual(flags.strings.get("port"), "8080")
    assert.strictEqual(flags.strings.get("name"), "x")
    assert.strictEqual(flags.booleans.get("use_tls"), true)
    const off = parseFlags(["--use_tls=false"], { strings: [], booleans: ["use_tls"] })
    assert.strictEqual(off.booleans.get("use_tls"), false)
    assert.throws(() => parseFlags(["--nope"], { strings: [], booleans: [] }))
  })

  it("the client knows every case name and rejects unknown ones", () => {
    assert.deepStrictEqual(parseClientArgs(["--server_port=1", "--test_case=all"]).testCases, allCases)
    assert.deepStrictEqual(parseClientArgs(["--server_port=1", "--test_case", "client_compressed_unary"]).testCases, [
      "client_compressed_unary"
    ])
    assert.throws(() => parseClientArgs(["--server_port=1", "--test_case=nope"]))
    assert.isTrue(Object.keys(cases).length === 16)
  })
})
