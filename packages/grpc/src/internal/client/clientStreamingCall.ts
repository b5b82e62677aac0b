/**
 * Client-streaming client call: writes the request Stream (with
 * backpressure), then awaits the response. Interrupting the Effect, or a
 * failure of the request Stream, cancels the call on the wire; the latter
 * fails the Effect with the request Stream's error.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Fiber, type Stream } from "effect"
import * as GrpcError from "../../GrpcError.js"
import { withoutCallerStack } from "./callerStack.js"
import { cancelOnWire } from "./cancel.js"
import { type CallOptions, observe, prepare } from "./callOptions.js"
import type { MethodCodec } from "./codec.js"
import { passBytes } from "../codec.js"
import { singleResponse } from "./singleResponse.js"
import { writeRequests } from "./writeRequests.js"

export const clientStreamingCall = <Req, Res>(channel: grpc.Client, method: MethodCodec<Req, Res>) =>
<E = never, R = never>(requests: Stream.Stream<Req, E, R>, options?: CallOptions): Effect.Effect<Res, GrpcError.GrpcError | E, R> =>
  Effect.scoped(Effect.gen(function*() {
    const prepared = yield* prepare(channel, options)
    const response = yield* Deferred.make<Res, GrpcError.GrpcError>()
    const single = singleResponse<Res>((exit) => Deferred.doneUnsafe(response, exit), method.decode)
    const call = withoutCallerStack(() =>
      channel.makeClientStreamRequest(
        method.path,
        method.serialize,
        passBytes,
        prepared.metadata,
        prepared.options,
        single.callback
      )
    )
    observe(call, options)
    call.on("status", single.onStatus)
    yield* Effect.addFinalizer(() => Effect.sync(() => Deferred.isDoneUnsafe(response) || cancelOnWire(call)))
    const writer = yield* Effect.forkScoped(writeRequests(call, requests), { startImmediately: true })
    // The response may come before the requests end (the server answered
    // early); a failed request Stream wins over the response still pending.
    return yield* Effect.raceFirst(
      Deferred.await(response),
      Effect.andThen(Fiber.join(writer), Effect.never)
    )
  }))
