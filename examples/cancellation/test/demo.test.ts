import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runScenes } from "../src/scenes.js"
import { makeTraceCollector } from "../src/traceTree.js"

describe("the cancellation demo (Client -> Server1 -> Server2)", () => {
  it.live("every scene stops the whole chain: handlers interrupted, upstream calls cancelled on the wire", () =>
    Effect.gen(function*() {
      const results = yield* runScenes(() => {})
      assert.strictEqual(results.length, 3)
      for (const result of results) {
        assert.deepStrictEqual(result.missing, [], `${result.name}:\n${result.lines.join("\n")}`)
      }
    }))

  it.live("--trace: each scene prints one trace of eight spans; a client cancel ends every span as interrupted", () => {
    const trace = makeTraceCollector()
    return Effect.gen(function*() {
      const lines: Array<string> = []
      const results = yield* runScenes((line) => lines.push(line), trace)
      assert.isTrue(results.every((r) => r.passed))
      const scenes = lines.join("\n").split(/\n(?=\d\. )/).slice(1)
      assert.strictEqual(scenes.length, 3)
      for (const scene of scenes) {
        const traces = scene.split("\n").filter((l) => /^  trace [0-9a-f]{32}$/.test(l))
        const spans = scene.split("\n").filter((l) => /\[(client|server)/.test(l))
        assert.strictEqual(traces.length, 1, scene)
        assert.strictEqual(spans.length, 8, scene)
      }
      const cancelSpans = scenes[0]!.split("\n").filter((l) => /\[(client|server)/.test(l))
      for (const span of cancelSpans) assert.include(span, "CANCELLED (interrupted)")
    }).pipe(Effect.provide(trace.layer))
  })
})
