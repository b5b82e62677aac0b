/**
 * The one place that turns ts-proto messages into bytes and back, for the
 * server and the client alike.
 *
 * Encoding: ts-proto 2.x encodes through `@bufbuild/protobuf`'s
 * `BinaryWriter`. The stock `encode(message).finish()` allocates a fresh
 * 128-byte writer buffer per message, grows it by doubling, then `slice`s the
 * result: two or more off-heap ArrayBuffers per message once past 64 bytes
 * (5-9 µs for a 64-byte message here). grpc-js copies whatever we return into
 * its own frame at once, so the fast path encodes into ONE reused writer per
 * writer class and copies its bytes into a `Buffer.allocUnsafe` (pooled below
 * 4 KiB): about 0.2-0.3 µs for the same message (`pnpm bench` measures it in
 * its codec section).
 *
 * The fast path reads two of the writer's non-public fields, `buffer`
 * (Uint8Array) and `pos` (bytes written), and resets `pos` to reuse it. It is
 * taken only for a writer class whose shape was verified at runtime on the
 * message's first encode (the bytes read from the fields must equal what
 * `finish()` returned, twice, the second time after a reset). Otherwise, and
 * whenever the writer is busy (re-entrant encode) or an encode throws, the
 * plain `encode(message).finish()` is used. test/codec.test.ts pins the
 * fields so that a `@bufbuild/protobuf` upgrade that changes them fails loudly
 * instead of silently losing the fast path.
 *
 * Decoding stays `decode(bytes)`: constructing the `BinaryReader` ourselves
 * (to skip ts-proto's per-message recursion-depth property transition) saves
 * 30-50 ns of a 230 ns decode, and would need the generated code's own
 * `BinaryReader` class (ts-proto checks `instanceof`), which the adapter does
 * not import. See BENCHMARKS.md for the figures.
 *
 * @internal
 */

/** What encoding needs of a ts-proto codec, for messages of any type. */
interface Encoder {
  encode(message: never): { finish(): Uint8Array }
}

/** What decoding needs of a ts-proto codec. */
interface Decoder<T> {
  decode(input: Uint8Array): T
}

/**
 * A writer whose bytes so far are `buffer[0, pos)`: `@bufbuild/protobuf`
 * 2.x's `BinaryWriter` (non-public fields, verified before use).
 */
interface ReusableWriter {
  buffer: Uint8Array
  pos: number
}

type WriterClass = new() => ReusableWriter

/** One reused writer per writer class (in practice one per process). */
interface SharedWriter {
  readonly make: WriterClass
  writer: ReusableWriter
  busy: boolean
}

/**
 * The largest buffer the reused writer keeps. A message that grows it past
 * this size takes the buffer with it (no copy) and the writer is replaced, so
 * a huge message does not pin a huge buffer for the life of the process.
 */
export const handOverBytes = 64 * 1024

/** The codec as the adapter calls it: ts-proto's `encode(message, writer?)`. */
interface EncodeFn {
  encode(message: unknown, writer?: unknown): { finish(): Uint8Array }
}

const shared = new Map<WriterClass, SharedWriter>()

const isWriterShaped = (w: unknown): w is ReusableWriter =>
  typeof w === "object" && w !== null &&
  (w as { buffer?: unknown }).buffer instanceof Uint8Array &&
  typeof (w as { pos?: unknown }).pos === "number" &&
  typeof (w as { finish?: unknown }).finish === "function" &&
  typeof w.constructor === "function"

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/**
 * Checks on a real message that `buffer[0, pos)` is what `finish()` returns
 * and that resetting `pos` is enough to reuse the writer; returns the class's
 * shared writer, or undefined for the plain path.
 */
const verify = (type: EncodeFn, message: unknown, expected: Uint8Array, sample: unknown): SharedWriter | undefined => {
  if (!isWriterShaped(sample)) return undefined
  // The class that made it; whether `new make()` gives a usable writer is
  // checked below before anything relies on it.
  const make = sample.constructor as WriterClass
  try {
    // Checked for every codec, even when its writer class is already known:
    // a codec can wrap a ts-proto encode and ignore the writer it is given,
    // and the shared writer would then stay empty.
    const probe: unknown = new make()
    if (!isWriterShaped(probe) || probe.pos !== 0) return undefined
    for (let round = 0; round < 2; round++) {
      // ts-proto's encode returns the writer it was given.
      if ((type.encode(message, probe) as unknown) !== probe) return undefined
      if (!sameBytes(probe.buffer.subarray(0, probe.pos), expected)) return undefined
      probe.pos = 0
    }
    const known = shared.get(make)
    if (known !== undefined) return known
    const entry: SharedWriter = { make, writer: probe, busy: false }
    shared.set(make, entry)
    return entry
  } catch {
    return undefined
  }
}

/** A Buffer view of encoded bytes, without copying them. */
const view = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The plain path: a fresh writer per message. */
const plain = (type: EncodeFn, message: unknown): Buffer => view(type.encode(message).finish())

/**
 * grpc-js's `serialize` for one ts-proto message type.
 *
 * @internal
 */
export const serializer = (messageType: Encoder): (message: unknown) => Buffer => {
  // ts-proto's encode takes an optional writer (`encode(message, writer =
  // new BinaryWriter())`); the public MessageType leaves it out so that types
  // stay inferred from the definition, and its class is only known at runtime.
  const type = messageType as unknown as EncodeFn
  // undefined: not probed yet; null: plain path for good.
  let fast: SharedWriter | null | undefined
  return (message) => {
    if (fast === undefined) {
      const writer = type.encode(message)
      const bytes = writer.finish()
      fast = verify(type, message, bytes, writer) ?? null
      return view(bytes)
    }
    if (fast === null || fast.busy) return plain(type, message)
    const entry = fast
    const writer = entry.writer
    entry.busy = true
    try {
      type.encode(message, writer)
      const length = writer.pos
      const buffer = writer.buffer
      if (buffer.byteLength > handOverBytes) {
        entry.writer = new entry.make()
        return Buffer.from(buffer.buffer, buffer.byteOffset, length)
      }
      const out = Buffer.allocUnsafe(length)
      out.set(buffer.subarray(0, length))
      writer.pos = 0
      return out
    } catch (error) {
      // The writer is in an unknown state (half a message, open forks).
      entry.writer = new entry.make()
      throw error
    } finally {
      entry.busy = false
    }
  }
}

/**
 * grpc-js's `deserialize` for one ts-proto message type.
 *
 * @internal
 */
export const deserializer = <T>(messageType: Decoder<T>): (bytes: Buffer) => T => (bytes) =>
  messageType.decode(bytes)

/**
 * Whether encoding `message` with `messageType` takes the fast path (after
 * its first encode, which probes the writer). For tests that pin the
 * writer's shape.
 *
 * @internal
 */
export const usesFastPath = (messageType: Encoder, message: unknown): boolean => {
  const type = messageType as unknown as EncodeFn
  const writer = type.encode(message)
  return verify(type, message, writer.finish(), writer) !== undefined
}

/**
 * The buffer sizes of the reused writers, for tests.
 *
 * @internal
 */
export const retainedWriterBytes = (): ReadonlyArray<number> =>
  Array.from(shared.values(), (entry) => entry.writer.buffer.byteLength)
