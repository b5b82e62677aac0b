import { assert, describe, it } from "@effect/vitest"
import { GrpcError } from "../src/index.js"

describe("GrpcError", () => {
  it("an uncaught error says its status where people look: its name, stack and string form", () => {
    const error = GrpcError.make(GrpcError.Status.UNAVAILABLE, "No connection established")
    assert.strictEqual(error.name, "GrpcError [UNAVAILABLE]")
    assert.isTrue(error.stack!.startsWith("GrpcError [UNAVAILABLE]: No connection established\n"))
    assert.strictEqual(String(error), "GrpcError(UNAVAILABLE): No connection established")
    // The message stays the status message alone: it is what a relay passes on.
    assert.strictEqual(error.message, "No connection established")
    assert.strictEqual(error._tag, "GrpcError")
  })
})
