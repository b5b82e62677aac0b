// Fails when packages/protos/src is not what `pnpm codegen` would write now:
// regenerates into a temporary directory (buf's --output prefix) and compares.
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"

const committed = "packages/protos/src"
const tmp = mkdtempSync(join(tmpdir(), "codegen-"))
try {
  execFileSync("buf", ["generate", "--output", tmp], { stdio: "inherit" })
  const list = (dir) =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name)
      return statSync(path).isDirectory() ? list(path) : [path]
    })
  const fresh = join(tmp, committed)
  const want = new Map(list(fresh).map((f) => [relative(fresh, f), readFileSync(f, "utf8")]))
  const have = new Map(list(committed).map((f) => [relative(committed, f), readFileSync(f, "utf8")]))
  const stale = [...new Set([...want.keys(), ...have.keys()])].filter((f) => want.get(f) !== have.get(f))
  if (stale.length > 0) {
    console.error(`generated code is stale (run \`pnpm codegen\` and commit):\n  ${stale.join("\n  ")}`)
    process.exit(1)
  }
  console.log(`codegen is up to date (${want.size} files)`)
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
