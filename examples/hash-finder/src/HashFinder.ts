/**
 * The HashFinder service (protos/hash_name) on GrpcServer.
 *
 * `Find` and `FindRange` run the brute-force search as a Stream; when the
 * client cancels, the handler fiber is interrupted and the search stops at the
 * next batch. Nothing here checks for cancellation. The server-side limit on
 * hashes checked ends a call from the server side with RESOURCE_EXHAUSTED.
 */
import { GrpcError, GrpcServer } from "@fiber-grpc/grpc"
import { HashFinderDefinition, type HashNameRequest } from "@fiber-grpc/protos/hash_name/hash_name"
import { Effect, Exit, Option, Stream } from "effect"
import { type HashLimitReached, type Match, search } from "./search.js"

export interface Options {
  /** How many candidates one call may hash before the server ends it. */
  readonly maximumHashes: number
}

const toResponse = (m: Match) => ({ secret: m.secret, hashedName: m.hashedName, hammingDistance: m.hammingDistance })

const limitReached = (e: HashLimitReached) =>
  GrpcError.make(GrpcError.Status.RESOURCE_EXHAUSTED, `gave up after checking ${e.checked} hashes (server limit)`)

/** Runs a search for one request, logging how it ended. */
const searchFor = (request: HashNameRequest, options: Options, interesting: number) => {
  let checked = 0
  return search({
    name: request.desiredName,
    ideal: request.idealHammingDistance,
    interesting,
    maximumHashes: options.maximumHashes,
    progress: (n) => {
      checked = n
    }
  }).pipe(
    Stream.mapError(limitReached),
    Stream.onStart(Effect.logInfo(`search for "${request.desiredName}" started`)),
    Stream.onExit((exit) =>
      exit._tag === "Success"
        ? Effect.logInfo(`search for "${request.desiredName}" finished after ${checked} hashes`)
        : Effect.logInfo(`search for "${request.desiredName}" stopped after ${checked} hashes: ${
          Exit.hasInterrupts(exit) ? "cancelled by the client" : "limit reached"
        }`)
    )
  )
}

export const layer = (options: Options) =>
  GrpcServer.serve(HashFinderDefinition, {
    find: (request) =>
      // Find ignores interesting_hamming_distance.
      Stream.runHead(searchFor(request, options, request.idealHammingDistance)).pipe(
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(GrpcError.make(GrpcError.Status.NOT_FOUND, "no secret found")),
          onSome: (m) => Effect.succeed(toResponse(m))
        }))
      ),
    findRange: (request) =>
      searchFor(request, options, request.interestingHammingDistance).pipe(Stream.map(toResponse))
  })
