/**
 * The brute-force search of gRPC's Python cancellation example: find a secret
 * whose SHA-256 hash (base64) contains a substring within a given Hamming
 * distance of the desired name.
 *
 * The search is a Stream of batches. Each batch is a short synchronous step
 * followed by a yield to the event loop, so the fiber running it can be
 * interrupted between any two batches: a cancelled call stops the search
 * within one batch (a few milliseconds).
 */
import { createHash } from "node:crypto"
import { Cause, Effect, Stream } from "effect"

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const batchSize = 2000

/** The n-th candidate secret: n written in base 62, shortest first. */
export const candidate = (n: number): string => {
  let s = ""
  let rest = n
  do {
    s = alphabet[rest % alphabet.length] + s
    rest = Math.floor(rest / alphabet.length) - 1
  } while (rest >= 0)
  return s
}

export const hashOf = (secret: string): string => createHash("sha256").update(secret).digest("base64")

/** The smallest Hamming distance between `target` and any same-length substring of `text`. */
export const substringHammingDistance = (text: string, target: string): number => {
  let best = target.length
  for (let start = 0; start + target.length <= text.length; start++) {
    let distance = 0
    for (let i = 0; i < target.length && distance < best; i++) {
      if (text[start + i] !== target[i]) distance++
    }
    if (distance < best) best = distance
  }
  return best
}

export interface Match {
  readonly secret: string
  readonly hashedName: string
  readonly hammingDistance: number
}

/** Thrown into the error channel when the search checked `maximumHashes` candidates. */
export class HashLimitReached {
  readonly _tag = "HashLimitReached"
  constructor(readonly checked: number) {}
}

/**
 * Every candidate within `interesting` distance, in search order, ending with
 * the first within `ideal` distance. Fails with `HashLimitReached` after
 * `maximumHashes` candidates. `progress` is told how many were checked.
 */
export const search = (options: {
  readonly name: string
  readonly ideal: number
  readonly interesting: number
  readonly maximumHashes: number
  readonly progress?: (checked: number) => void
}): Stream.Stream<Match, HashLimitReached> => {
  let next = 0
  let done = false
  const batch = Effect.suspend((): Effect.Effect<ReadonlyArray<Match>, HashLimitReached | Cause.Done> => {
    if (done) return Cause.done()
    if (next >= options.maximumHashes) return Effect.fail(new HashLimitReached(next))
    const matches: Array<Match> = []
    const end = Math.min(next + batchSize, options.maximumHashes)
    for (; next < end && !done; next++) {
      const secret = candidate(next)
      const hashedName = hashOf(secret)
      const hammingDistance = substringHammingDistance(hashedName, options.name)
      if (hammingDistance <= Math.max(options.ideal, options.interesting)) {
        matches.push({ secret, hashedName, hammingDistance })
        if (hammingDistance <= options.ideal) done = true
      }
    }
    options.progress?.(next)
    // Give the event loop a turn after every batch: this is when grpc-js can
    // read a RST_STREAM and interrupt this fiber. (Left alone, a fiber only
    // yields every 2048 Effect operations: seconds of hashing here.)
    return Effect.as(Effect.yieldNow, matches)
  })
  return Stream.fromEffectRepeat(batch).pipe(Stream.flatMap(Stream.fromIterable))
}
