/**
 * A method's path and codecs, as the client's calls use them. grpc-js is
 * given `passBytes` (../codec.ts) as the response deserializer, and the call
 * decodes each response with `decode` itself (decodeResponse.ts).
 *
 * @internal
 */
export interface MethodCodec<Req, Res> {
  readonly path: string
  readonly serialize: (value: Req) => Buffer
  readonly decode: (bytes: Buffer) => Res
}
