// `pnpm test:adopter`: installs the packed library into a new npm project,
// following the README's "Install" and "Your own protos" sections literally,
// and runs an app of its own with plain `node`. It fails if any step breaks:
// packing, installing with npm, code generation, `tsc --strict` with NodeNext,
// or the app's checks (unary, NOT_FOUND, a stream, a client cancel that
// interrupts the upstream handler, a deadline that reaches the upstream).
//
// The README blocks it runs are the fenced code blocks that follow the
// `<!-- adopter:... -->` markers, so the documentation cannot drift from what
// is tested. Needs the npm registry (as any `npm install` does).
import { execFileSync, execSync } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const readme = readFileSync(path.join(root, "README.md"), "utf8")

/** The fenced block after `<!-- adopter:name -->` in the README. */
const block = (name) => {
  const match = readme.match(new RegExp(`<!-- adopter:${name.replace(".", "\\.")} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``))
  if (!match) throw new Error(`README.md has no <!-- adopter:${name} --> block`)
  return match[1]
}
const commands = (text) => text.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l && !l.startsWith("#"))

// pnpm's own npm_config_* settings mean nothing to npm (it warns about each).
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_config_")))
Object.assign(env, { npm_config_fund: "false", npm_config_audit: "false", npm_config_update_notifier: "false" })

const step = (title) => console.log(`\n[adopter] ${title}`)
const run = (command, cwd) => {
  console.log(`$ ${command}`)
  execSync(command, { cwd, stdio: "inherit", env })
}

step("pack the publishable packages")
execFileSync(process.execPath, [path.join(root, "scripts/pack.mjs")], { cwd: root, stdio: "inherit" })
const tarballs = readdirSync(path.join(root, "packs")).filter((f) => f.endsWith(".tgz")).map((f) => path.join(root, "packs", f))
const tarballFor = (name) => {
  const file = tarballs.find((t) => path.basename(t).startsWith(name.replace("@", "").replace("/", "-") + "-"))
  if (!file) throw new Error(`no tarball for ${name} in packs/`)
  return file
}

const app = mkdtempSync(path.join(os.tmpdir(), "fiber-grpc-adopter-"))
const keep = process.argv.includes("--keep")
try {
  step(`new npm project in ${app}`)
  run("npm init -y > /dev/null", app)
  for (const command of commands(block("install"))) {
    // The published name becomes the packed tarball; everything else comes from the registry.
    run(command.replace(/@fiber-grpc\/[\w-]+/g, (name) => tarballFor(name)), app)
  }

  step("the app's own proto and code, the README's buf.gen.yaml and tsconfig.json")
  cpSync(path.join(root, "scripts/adopter/proto"), path.join(app, "proto"), { recursive: true })
  cpSync(path.join(root, "scripts/adopter/src"), path.join(app, "src"), { recursive: true })
  writeFileSync(path.join(app, "buf.gen.yaml"), block("buf.gen.yaml"))
  const tsconfig = block("tsconfig.json")
  writeFileSync(path.join(app, "tsconfig.json"), tsconfig)
  const options = JSON.parse(tsconfig).compilerOptions
  if (options.strict !== true || options.module !== "NodeNext") throw new Error("the README's tsconfig must be strict and NodeNext")

  step("exactly one copy of each Effect package, and nothing unrelated")
  const found = (name) => execSync(`find . -path '*/node_modules/${name}/package.json'`, { cwd: app }).toString().trim().split("\n").filter(Boolean)
  for (const name of ["effect", "@grpc/grpc-js", "@effect/platform-node-shared"]) {
    const copies = found(name)
    if (copies.length !== 1) throw new Error(`expected one copy of ${name}, found ${copies.length}: ${copies.join(", ")}`)
  }
  for (const name of ["redis", "undici", "@effect/platform-node"]) {
    if (found(name).length > 0) throw new Error(`${name} should not be installed`)
  }
  if (existsSync(path.join(app, "node_modules/@fiber-grpc/grpc/dist/index.js")) === false) throw new Error("dist/ missing from the package")

  step("generate, compile with tsc --strict (NodeNext), run with plain node")
  const build = commands(block("build"))
  const runLine = build.find((c) => c.startsWith("node "))
  for (const command of build.filter((c) => c !== runLine)) run(command, app)
  console.log(`$ ${runLine}`)
  const output = execSync(runLine, { cwd: app, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 60_000 })
  process.stdout.write(output)
  if (!output.includes("adopter app: all checks passed")) throw new Error("the app did not pass its checks")
  console.log(`\n[adopter] passed on node ${process.version}`)
} finally {
  if (keep) console.log(`[adopter] kept ${app}`)
  else rmSync(app, { recursive: true, force: true })
}
