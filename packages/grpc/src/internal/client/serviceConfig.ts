/**
 * Checking a `ServiceConfig` and turning it into grpc-js's JSON form, with
 * the `waitForReady` lookup that `GrpcClient` applies per call.
 *
 * @internal
 */
import * as grpc from "@grpc/grpc-js"
import { Duration } from "effect"
import type { MethodName, ServiceConfig, StatusCode } from "../../ServiceConfig.js"

/** The limit grpc-js puts on `maxAttempts` unless `grpc-node.retry_max_attempts_limit` says otherwise. */
const defaultMaxAttemptsLimit = 5

/**
 * Checks `config` and turns it into grpc-js's JSON form. Returns the problems
 * found, or the JSON and the methods that want `waitForReady`.
 */
export const compile = (
  config: ServiceConfig,
  maxAttemptsLimit: number = defaultMaxAttemptsLimit
): { readonly problems: ReadonlyArray<string> } | { readonly json: string; readonly waitForReady: WaitForReady } => {
  const problems: Array<string> = []
  const out: Record<string, unknown> = {}

  if (config.loadBalancing !== undefined) {
    const list = typeof config.loadBalancing === "string" ? [{ [config.loadBalancing]: {} }] : config.loadBalancing
    const errors: Array<string> = []
    for (const entry of list) {
      try {
        grpc.experimental.parseLoadBalancingConfig({ ...entry })
      } catch (e) {
        errors.push(e instanceof Error ? e.message : String(e))
      }
    }
    if (list.length === 0) problems.push("loadBalancing: the list is empty")
    else if (errors.length === list.length) problems.push(`loadBalancing: no usable policy (${errors.join(", ")})`)
    out.loadBalancingConfig = list
  }

  const waitForReady: Array<MethodName> = []
  const noWait: Array<MethodName> = []
  const seen = new Set<string>()
  out.methodConfig = (config.methods ?? []).map((method, i) => {
    const at = `methods[${i}]`
    const json: Record<string, unknown> = {}
    if (method.names.length === 0) problems.push(`${at}.names: names no method`)
    json.name = method.names.map((name, j) => {
      if (name.method !== undefined && name.method !== "" && (name.service === undefined || name.service === "")) {
        problems.push(`${at}.names[${j}]: a method needs its service`)
      }
      const key = `${name.service ?? ""}/${name.method ?? ""}`
      if (seen.has(key)) problems.push(`${at}.names[${j}]: ${key === "/" ? "the default ({})" : key} is configured twice`)
      seen.add(key)
      return {
        ...(name.service ? { service: name.service } : {}),
        ...(name.service && name.method ? { method: name.method } : {})
      }
    })
    if (method.timeout !== undefined) {
      const ms = millis(method.timeout, `${at}.timeout`, problems)
      if (ms !== undefined && ms <= 0) problems.push(`${at}.timeout: must be more than zero`)
      // The object form: grpc-js 1.14 reads a fractional "0.05s" string as
      // 5 nanoseconds (validateMethodConfig takes the digits after the point
      // as nanos); seconds + nanos are read exactly.
      else if (ms !== undefined) json.timeout = { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) }
    }
    if (method.waitForReady !== undefined) {
      json.waitForReady = method.waitForReady
      ;(method.waitForReady ? waitForReady : noWait).push(...method.names)
    }
    if (method.retry !== undefined && method.hedging !== undefined) {
      problems.push(`${at}: retry and hedging cannot both be set`)
    } else if (method.retry !== undefined) {
      const p = method.retry
      const path = `${at}.retry`
      attempts(p.maxAttempts, path, maxAttemptsLimit, problems)
      const initial = positive(p.initialBackoff, `${path}.initialBackoff`, problems)
      const max = positive(p.maxBackoff, `${path}.maxBackoff`, problems)
      if (!(typeof p.backoffMultiplier === "number" && p.backoffMultiplier > 0)) {
        problems.push(`${path}.backoffMultiplier: must be a number more than zero (got ${p.backoffMultiplier})`)
      }
      if (p.retryableStatusCodes.length === 0) problems.push(`${path}.retryableStatusCodes: must name at least one status`)
      json.retryPolicy = {
        maxAttempts: p.maxAttempts,
        initialBackoff: initial,
        maxBackoff: max,
        backoffMultiplier: p.backoffMultiplier,
        retryableStatusCodes: statusNames(p.retryableStatusCodes, `${path}.retryableStatusCodes`, problems)
      }
    } else if (method.hedging !== undefined) {
      const p = method.hedging
      const path = `${at}.hedging`
      attempts(p.maxAttempts, path, maxAttemptsLimit, problems)
      json.hedgingPolicy = {
        maxAttempts: p.maxAttempts,
        ...(p.hedgingDelay === undefined ? {} : { hedgingDelay: seconds(p.hedgingDelay, `${path}.hedgingDelay`, problems) }),
        ...(p.nonFatalStatusCodes === undefined
          ? {}
          : { nonFatalStatusCodes: statusNames(p.nonFatalStatusCodes, `${path}.nonFatalStatusCodes`, problems) })
      }
    }
    return json
  })

  if (config.retryThrottling !== undefined) {
    const { maxTokens, tokenRatio } = config.retryThrottling
    if (!(typeof maxTokens === "number" && maxTokens > 0 && maxTokens <= 1000)) {
      problems.push(`retryThrottling.maxTokens: must be more than 0 and at most 1000 (got ${maxTokens})`)
    }
    if (!(typeof tokenRatio === "number" && tokenRatio > 0)) {
      problems.push(`retryThrottling.tokenRatio: must be more than zero (got ${tokenRatio})`)
    }
    out.retryThrottling = { maxTokens, tokenRatio }
  }

  return problems.length > 0
    ? { problems }
    : { json: JSON.stringify(out), waitForReady: makeWaitForReady(waitForReady, noWait) }
}

/**
 * Whether calls of a method wait for a ready backend, as the service
 * config's lookup rules say: the method's own entry, else its service's,
 * else the default.
 */
export type WaitForReady = (service: string, method: string) => boolean

const never: WaitForReady = () => false

const makeWaitForReady = (on: ReadonlyArray<MethodName>, off: ReadonlyArray<MethodName>): WaitForReady => {
  if (on.length === 0) return never
  const table = new Map<string, boolean>()
  for (const name of off) table.set(`${name.service ?? ""}/${name.method ?? ""}`, false)
  for (const name of on) table.set(`${name.service ?? ""}/${name.method ?? ""}`, true)
  return (service, method) =>
    table.get(`${service}/${method}`) ?? table.get(`${service}/`) ?? table.get("/") ?? false
}

const millis = (input: Duration.Input, path: string, problems: Array<string>): number | undefined => {
  const duration = Duration.fromInput(input)
  if (duration._tag === "None" || !Duration.isFinite(duration.value)) {
    problems.push(`${path}: not a finite duration (${JSON.stringify(input)})`)
    return undefined
  }
  return Duration.toMillis(duration.value)
}

/** A duration in the service config's `"1.5s"` form (at most 9 decimals). */
const seconds = (input: Duration.Input, path: string, problems: Array<string>): string => {
  const ms = millis(input, path, problems)
  if (ms === undefined) return "0s"
  if (ms < 0) problems.push(`${path}: must not be negative`)
  return `${Number((Math.max(0, ms) / 1000).toFixed(9))}s`
}

const positive = (input: Duration.Input, path: string, problems: Array<string>): string => {
  const s = seconds(input, path, problems)
  if (s === "0s") problems.push(`${path}: must be more than zero`)
  return s
}

const attempts = (n: number, path: string, limit: number, problems: Array<string>): void => {
  if (!Number.isInteger(n) || n < 2) {
    problems.push(`${path}.maxAttempts: must be an integer of at least 2 (got ${n})`)
  } else if (n > limit) {
    problems.push(
      `${path}.maxAttempts: ${n} is more than the channel allows (${limit}; grpc-js would cap it silently; raise the channel option grpc-node.retry_max_attempts_limit)`
    )
  }
}

const statusNames = (codes: ReadonlyArray<StatusCode>, path: string, problems: Array<string>): Array<string> =>
  codes.map((code, i) => {
    const name = typeof code === "number" ? grpc.status[code] : code.toUpperCase() in grpc.status ? code.toUpperCase() : undefined
    if (name === undefined || name === "OK") {
      problems.push(`${path}[${i}]: ${JSON.stringify(code)} is not a retryable status code`)
      return String(code)
    }
    return name
  })
