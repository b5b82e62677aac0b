// Fails when the generated code is not what `pnpm codegen` would write now:
// regenerates every template into a temporary directory (buf's --output
// prefix) and compares with the committed output directories.
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"

// template -> the directory it writes (see the `out:` of each)
const templates = [
  ["buf.gen.yaml", "packages/protos/src"],
  ["buf.gen.grpc.yaml", "packages/grpc/src/generated"]
]
const list = (dir) =>
  existsSync(dir)
    ? readdirSync(dir).flatMap((name) => {
      const path = join(dir, name)
      return statSync(path).isDirectory() ? list(path) : [path]
    })
    : []
const tmp = mkdtempSync(join(tmpdir(), "codegen-"))
try {
  let total = 0
  const stale = []
  for (const [template, committed] of templates) {
    execFileSync("buf", ["generate", "--template", template, "--output", tmp], { stdio: "inherit" })
    const fresh = join(tmp, committed)
    const want = new Map(list(fresh).map((f) => [relative(fresh, f), readFileSync(f, "utf8")]))
    const have = new Map(list(committed).map((f) => [relative(committed, f), readFileSync(f, "utf8")]))
    stale.push(
      ...[...new Set([...want.keys(), ...have.keys()])].filter((f) => want.get(f) !== have.get(f)).map((f) =>
        join(committed, f)
      )
    )
    total += want.size
  }
  if (stale.length > 0) {
    console.error(`generated code is stale (run \`pnpm codegen\` and commit):\n  ${stale.join("\n  ")}`)
    process.exit(1)
  }
  console.log(`codegen is up to date (${total} files)`)
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
