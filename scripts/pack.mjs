// `pnpm pack` at the root: pnpm runs this as the root's `prepack` hook. It
// builds and packs every publishable (non-private) workspace package into
// `packs/`, the one folder an adopter installs from. The root package itself
// is private and its own tarball is removed again by `postpack`.
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.join(root, "packs")
rmSync(out, { recursive: true, force: true })
mkdirSync(out)

const pnpm = process.env.npm_execpath
for (const dir of readdirSync(path.join(root, "packages"))) {
  const manifestPath = path.join(root, "packages", dir, "package.json")
  let manifest
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
  } catch {
    continue
  }
  if (manifest.private) continue
  // `pnpm pack` runs the package's own `prepack` (a clean tsc build), applies
  // `publishConfig` (exports pointing at dist/) and rewrites workspace: ranges.
  const args = ["pack", "--pack-destination", out]
  if (pnpm && pnpm.endsWith(".cjs")) execFileSync(process.execPath, [pnpm, ...args], { cwd: path.dirname(manifestPath), stdio: "inherit" })
  else execFileSync("pnpm", args, { cwd: path.dirname(manifestPath), stdio: "inherit" })
}
console.log(`packed into ${path.relative(process.cwd(), out) || "."}/: ${readdirSync(out).join(", ")}`)
