/**
 * Command-line flags as the official interop clients and servers take them:
 * `--name value` or `--name=value`; a boolean flag may stand alone
 * (`--use_tls`) or take `true` / `false` (`--use_tls=false`, `--use_tls true`).
 * A bare `--` (which some package managers insert) is ignored.
 */

export interface FlagSpec {
  /** Flags that hold a value. */
  readonly strings: ReadonlyArray<string>
  /** Flags that are true or false. */
  readonly booleans: ReadonlyArray<string>
}

export interface ParsedFlags {
  readonly strings: ReadonlyMap<string, string>
  readonly booleans: ReadonlyMap<string, boolean>
}

export class ArgsError extends Error {
  override readonly name = "ArgsError"
}

const parseBoolean = (flag: string, value: string): boolean => {
  const v = value.toLowerCase()
  if (v === "true" || v === "1") return true
  if (v === "false" || v === "0") return false
  throw new ArgsError(`--${flag} takes true or false, not "${value}"`)
}

export const parseFlags = (argv: ReadonlyArray<string>, spec: FlagSpec): ParsedFlags => {
  const strings = new Map<string, string>()
  const booleans = new Map<string, boolean>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") continue
    if (!arg.startsWith("--")) throw new ArgsError(`unexpected argument "${arg}"`)
    const eq = arg.indexOf("=")
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    const inline = eq === -1 ? undefined : arg.slice(eq + 1)
    if (spec.booleans.includes(name)) {
      if (inline !== undefined) {
        booleans.set(name, parseBoolean(name, inline))
      } else {
        const next = argv[i + 1]?.toLowerCase()
        if (next === "true" || next === "false") {
          booleans.set(name, next === "true")
          i++
        } else {
          booleans.set(name, true)
        }
      }
    } else if (spec.strings.includes(name)) {
      const value = inline ?? argv[++i]
      if (value === undefined) throw new ArgsError(`--${name} needs a value`)
      strings.set(name, value)
    } else {
      throw new ArgsError(`unknown flag --${name}`)
    }
  }
  return { strings, booleans }
}

/** A flag that must be a port number (0 to 65535). */
export const parsePort = (flag: string, value: string): number => {
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535) throw new ArgsError(`--${flag} must be a port number, not "${value}"`)
  return port
}
