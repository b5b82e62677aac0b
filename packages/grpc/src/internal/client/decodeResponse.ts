/**
 * Responses are decoded by the client's calls, not by grpc-js.
 *
 * GrpcClient gives grpc-js `passBytes` (../codec.ts) as every method's
 * response deserializer, and decodes a response when it hands it over: a
 * unary or client-streaming response once the call's status has arrived,
 * a streamed one when a pull of the response Stream takes it. grpc-js keeps
 * a unary call's decoded response reachable until the status arrives, and
 * V8 pretenured ts-proto's message literal (the response type's allocation
 * site) after 20,000 unary calls, so that every later response of that type,
 * streamed ones included, was allocated in the old generation. The server
 * side, and the measurements, are in ../server/decodeRequest.ts.
 *
 * A response that does not decode fails the call with the status grpc-js
 * gives it, `INTERNAL` "Response message parsing error: ...", and a
 * streaming call is cancelled on the wire, as grpc-js does.
 *
 * @internal
 */
import * as GrpcError from "../../GrpcError.js"

export const undecodableResponse = (cause: unknown): GrpcError.GrpcError =>
  GrpcError.make(
    GrpcError.Status.INTERNAL,
    `Response message parsing error: ${cause instanceof Error ? cause.message : String(cause)}`
  )
