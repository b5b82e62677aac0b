/**
 * Request messages are decoded by the adapter, not by grpc-js.
 *
 * The server registers every method with grpc-js with `passBytes`
 * (../codec.ts) as its request deserializer, so grpc-js holds only each
 * message's bytes, and the adapter decodes a message when the handler is
 * about to get it: a unary or server-streaming request as its handler
 * starts, a streamed request when the request Stream takes it
 * (requestStream.ts).
 *
 * Why: grpc-js keeps a unary call's decoded request reachable until the
 * call's HTTP/2 stream has closed, well after a synchronous handler is done,
 * and keeps a streamed request decoded in its queue until it is read. ts-proto
 * builds each message with an object literal, and V8 pretenures a literal's
 * allocation site once it sees most of its objects survive a young-generation
 * collection. After 20,000 unary calls under load, that had happened to the
 * benchmark's request type (on this framework and on plain grpc-js with
 * ts-proto's codecs alike; protobufjs builds messages with constructors,
 * which V8 does not pretenure). From then on every message of that type, in
 * every call kind, was allocated in the old generation, and each of its
 * fields was copied out of the young generation at the next scavenge (README
 * "Where the streaming overhead went"). Decoded here, a request is reachable
 * only from its handler, and dies young when the handler is done with it.
 *
 * A request that does not decode gets the status grpc-js gives it:
 * `INTERNAL` "Error deserializing request".
 *
 * @internal
 */
import * as GrpcError from "../../GrpcError.js"

/** What `decodeRequest` gives for bytes that do not decode. */
export const undecodable: unique symbol = Symbol.for("@fiber-grpc/grpc/undecodable")

export const decodeRequest = <Req>(decode: (bytes: Buffer) => Req, bytes: Buffer): Req | typeof undecodable => {
  try {
    return decode(bytes)
  } catch {
    return undecodable
  }
}

/** The error a request that does not decode fails with (grpc-js's own status and message). */
export const undecodableRequest = (): GrpcError.GrpcError =>
  GrpcError.make(GrpcError.Status.INTERNAL, "Error deserializing request")
