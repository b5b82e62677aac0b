import { defineProject } from "vitest/config"

// 60 s: one test runs `pnpm fleet` as a child process (tsx start-up included),
// which takes 8 s with two suites and two CPU burners on 2 cores.
export default defineProject({
  test: { name: "fleet", include: ["test/**/*.test.ts"], testTimeout: 60_000 }
})
