import { assert, describe, it } from "@effect/vitest"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { Effect } from "effect"
import { GrpcClient, ServiceConfig } from "../src/index.js"
import { compile } from "../src/internal/client/serviceConfig.js"

const retry: ServiceConfig.RetryPolicy = {
  maxAttempts: 3,
  initialBackoff: "100 millis",
  maxBackoff: "1 second",
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE"]
}

const problems = (serviceConfig: ServiceConfig.ServiceConfig) =>
  Effect.map(Effect.flip(GrpcClient.makeChannel("127.0.0.1:1", { serviceConfig })), (e) => e.problems)

describe("ServiceConfig: checked when the channel is made", () => {
  it("methods() needs at least one method key, by type and at runtime (use service() for every method)", () => {
    assert.deepStrictEqual(ServiceConfig.methods(EchoDefinition, "unaryEcho", "clientStreamingEcho"), [
      { service: "grpc.examples.echo.Echo", method: "UnaryEcho" },
      { service: "grpc.examples.echo.Echo", method: "ClientStreamingEcho" }
    ])
    // @ts-expect-error no method key
    assert.throws(() => ServiceConfig.methods(EchoDefinition), /use ServiceConfig.service/)
    const none: ReadonlyArray<"unaryEcho"> = []
    // @ts-expect-error a possibly empty list does not type either
    assert.throws(() => ServiceConfig.methods(EchoDefinition, ...none), /names no method/)
  })

  it.effect("a valid config opens the channel, and grpc-js gets it in its JSON form", () =>
    Effect.gen(function*() {
      const channel = yield* GrpcClient.makeChannel("ipv4:127.0.0.1:1,127.0.0.1:2", {
        serviceConfig: {
          loadBalancing: "round_robin",
          methods: [
            { names: ServiceConfig.methods(EchoDefinition, "unaryEcho"), timeout: "1500 millis", retry },
            {
              names: ServiceConfig.methods(EchoDefinition, "serverStreamingEcho"),
              hedging: { maxAttempts: 2, hedgingDelay: "50 millis", nonFatalStatusCodes: [14] }
            },
            { names: ServiceConfig.allMethods, waitForReady: true }
          ],
          retryThrottling: { maxTokens: 10, tokenRatio: 0.1 }
        }
      })
      assert.strictEqual(channel.target, "ipv4:127.0.0.1:1,127.0.0.1:2")
      assert.isTrue(channel.waitForReady?.("grpc.examples.echo.Echo", "UnaryEcho"))
      const compiled = compile({
        loadBalancing: "round_robin",
        methods: [{ names: ServiceConfig.methods(EchoDefinition, "unaryEcho"), timeout: "1500 millis", retry }]
      })
      assert.isTrue("json" in compiled)
      if ("json" in compiled) {
        assert.deepStrictEqual(JSON.parse(compiled.json), {
          loadBalancingConfig: [{ round_robin: {} }],
          methodConfig: [{
            name: [{ service: "grpc.examples.echo.Echo", method: "UnaryEcho" }],
            timeout: { seconds: 1, nanos: 500_000_000 },
            retryPolicy: {
              maxAttempts: 3,
              initialBackoff: "0.1s",
              maxBackoff: "1s",
              backoffMultiplier: 2,
              retryableStatusCodes: ["UNAVAILABLE"]
            }
          }]
        })
      }
    }))

  it.effect("every problem is reported, with its path", () =>
    Effect.gen(function*() {
      const found = yield* problems({
        loadBalancing: "round_robbin" as "round_robin",
        methods: [
          {
            names: ServiceConfig.methods(EchoDefinition, "unaryEcho"),
            retry: { ...retry, maxAttempts: 1, initialBackoff: 0, retryableStatusCodes: ["UNAVAILABEL" as "UNAVAILABLE"] }
          },
          { names: ServiceConfig.methods(EchoDefinition, "unaryEcho"), hedging: { maxAttempts: 7 } },
          { names: ServiceConfig.service(EchoDefinition), retry, hedging: { maxAttempts: 2 } },
          { names: [], timeout: "-1 second" }
        ],
        retryThrottling: { maxTokens: 5000, tokenRatio: 0 }
      })
      assert.deepStrictEqual(found, [
        "loadBalancing: no usable policy (Unrecognized load balancing config name round_robbin)",
        "methods[0].retry.maxAttempts: must be an integer of at least 2 (got 1)",
        "methods[0].retry.initialBackoff: must be more than zero",
        "methods[0].retry.retryableStatusCodes[0]: \"UNAVAILABEL\" is not a retryable status code",
        "methods[1].names[0]: grpc.examples.echo.Echo/UnaryEcho is configured twice",
        "methods[1].hedging.maxAttempts: 7 is more than the channel allows (5; grpc-js would cap it silently; raise the channel option grpc-node.retry_max_attempts_limit)",
        "methods[2]: retry and hedging cannot both be set",
        "methods[3].names: names no method",
        "methods[3].timeout: must be more than zero",
        "retryThrottling.maxTokens: must be more than 0 and at most 1000 (got 5000)",
        "retryThrottling.tokenRatio: must be more than zero (got 0)"
      ])
    }))

  it.effect("the error's message lists the problems; the channel option can raise the attempts limit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(GrpcClient.makeChannel("127.0.0.1:1", {
        serviceConfig: { methods: [{ names: ServiceConfig.allMethods, retry: { ...retry, backoffMultiplier: 0 } }] }
      }))
      assert.strictEqual(error._tag, "ServiceConfigError")
      assert.strictEqual(
        error.message,
        "invalid service config: methods[0].retry.backoffMultiplier: must be a number more than zero (got 0)"
      )
      yield* GrpcClient.makeChannel("127.0.0.1:1", {
        channelOptions: { "grpc-node.retry_max_attempts_limit": 8 },
        serviceConfig: { methods: [{ names: ServiceConfig.allMethods, retry: { ...retry, maxAttempts: 8 } }] }
      })
    }))

  it.effect("a layer with a bad config fails to build with the same error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(
        Effect.void,
        GrpcClient.layerChannel("127.0.0.1:1", { serviceConfig: { loadBalancing: [] } })
      ))
      assert.deepStrictEqual(error.problems, ["loadBalancing: the list is empty"])
    }))

  it.effect("raw loadBalancingConfig lists are checked by grpc-js's own parsers", () =>
    Effect.gen(function*() {
      yield* GrpcClient.makeChannel("127.0.0.1:1", {
        serviceConfig: { loadBalancing: [{ xds_cluster_impl: {} }, { round_robin: {} }] }
      })
      const found = yield* problems({ loadBalancing: [{ pick_first: { shuffleAddressList: "yes" } }] })
      assert.strictEqual(found.length, 1)
      assert.match(found[0]!, /^loadBalancing: no usable policy \(pick_first: /)
    }))

  it("retryPushback builds the trailer A6 clients read", () => {
    assert.deepStrictEqual(ServiceConfig.retryPushback("250 millis").get("grpc-retry-pushback-ms"), ["250"])
    assert.deepStrictEqual(ServiceConfig.retryPushback("never").get("grpc-retry-pushback-ms"), ["-1"])
  })
})
