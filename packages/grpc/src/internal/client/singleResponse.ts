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
import { undecodableResponse } from "./decodeResponse.js"

export const singleResponse = <Res>(
  complete: (exit: Exit.Exit<Res, GrpcError.GrpcError>) => void,
  decode: (bytes: Buffer) => Res
) => {
  let response: Buffer | undefined
  return {
    /** For grpc-js's callback argument: the response's bytes (decodeResponse.ts). */
    callback: (_error: unknown, value?: Buffer): void => {
      response = value
    },
    /** For the call's `'status'` event. */
    onStatus: (status: grpc.StatusObject): void => complete(responseExit(status, response, decode))
  }
}

/**
 * The call's outcome once its `'status'` arrived, given the bytes grpc-js's
 * callback delivered, decoded only now (decodeResponse.ts).
 */
export const responseExit = <Res>(
  status: grpc.StatusObject,
  response: Buffer | undefined,
  decode: (bytes: Buffer) => Res
): Exit.Exit<Res, GrpcError.GrpcError> => {
  if (status.code !== 0) return Exit.fail(GrpcError.fromStatus(status))
  try {
    // grpc-js boundary: an OK status means its callback delivered the response.
    return Exit.succeed(decode(response as Buffer))
  } catch (cause) {
    return Exit.fail(undecodableResponse(cause))
  }
}
