import { defineProject } from "vitest/config"

export default defineProject({
  test: { name: "hash-finder", include: ["test/**/*.test.ts"], testTimeout: 30_000 }
})
