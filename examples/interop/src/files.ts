/**
 * Where the test certificates live, and whether a module is the entry point.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** A file in `examples/interop/certs`. */
export const certPath = (name: string): string => fileURLToPath(new URL(`../certs/${name}`, import.meta.url))

/** True when the module at `moduleUrl` is the script Node (or tsx) was started with. */
export const isMain = (moduleUrl: string): boolean => {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return fs.realpathSync(path.resolve(script)) === fs.realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}
