/**
 * The one response of a client-streaming client call (and, through
 * `responseExit`, of a unary one: unaryCall.ts keeps its closures inline).
 *
 * grpc-js calls back with the message before it emits `'status'`; completing
 * on `'status'` means the trailers (and `onTrailers`) have been seen by the
 * time the caller resumes.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Exit } from "effect"
import * as GrpcError from "../../GrpcError.js"

export const singleResponse = <Res>(complete: (exit: Exit.Exit<Res, GrpcError.GrpcError>) => void) => {
  let response: Res | undefined
  return {
    /** For grpc-js's callback argument. */
    callback: (_error: unknown, value?: Res): void => {
      response = value
    },
    /** For the call's `'status'` event. */
    onStatus: (status: grpc.StatusObject): void => complete(responseExit(status, response))
  }
}

/** The call's outcome once its `'status'` arrived, given what grpc-js's callback delivered. */
export const responseExit = <Res>(status: grpc.StatusObject, response: Res | undefined): Exit.Exit<Res, GrpcError.GrpcError> =>
  status.code === 0
    // grpc-js boundary: an OK status means its callback delivered the response.
    ? Exit.succeed(response as Res)
    : Exit.fail(GrpcError.fromStatus(status))
