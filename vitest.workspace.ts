// The root test configuration: `pnpm test` runs `vitest run --config vitest.workspace.ts`.
// (Vitest 5 no longer reads a workspace file by name; it is loaded here as the config.)
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "examples/*/vitest.config.ts"]
  }
})
