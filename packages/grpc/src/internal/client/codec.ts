/**
 * A method's path and codecs, as grpc-js's generic client methods take them.
 *
 * @internal
 */
export interface MethodCodec<Req, Res> {
  readonly path: string
  readonly serialize: (value: Req) => Buffer
  readonly deserialize: (bytes: Buffer) => Res
}
