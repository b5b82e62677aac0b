import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runScenes } from "../src/scenes.js"

describe("the cancellation demo (Client -> Server1 -> Server2)", () => {
  it.live("every scene stops the whole chain: handlers interrupted, upstream calls cancelled on the wire", () =>
    Effect.gen(function*() {
      const results = yield* runScenes(() => {})
      assert.strictEqual(results.length, 3)
      for (const result of results) {
        assert.deepStrictEqual(result.missing, [], `${result.name}:\n${result.lines.join("\n")}`)
      }
    }))
})
