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
 * Decoding: the stock `decode(bytes)` builds a `BinaryReader` per message,
 * and its constructor allocates a `DataView` (60-80 ns here, whether or not
 * the message has a fixed-width field); ts-proto then adds a recursion-depth
 * property to that fresh object (a hidden-class transition per message), and
 * a string past 32 bytes is decoded through a Buffer `subarray` and a
 * `TextDecoder` (about 100 ns for 64 bytes, against 60-70 for Node's own
 * UTF-8 slice). The fast path decodes from ONE reused reader, a
 * `BinaryReader` subclass that is reset onto each buffer, creates its
 * `DataView` only when a fixed-width field asks for it, already has the
 * depth property (set to 0 for each message, as on a fresh reader), and reads
 * non-strict strings straight from the Buffer.
 * ts-proto's `decode` accepts a reader (`input instanceof BinaryReader`, its
 * own copy of `@bufbuild/protobuf`), so this is checked on the first
 * non-empty message of each type: the fast result must have consumed every
 * byte and re-encode to the same bytes (as the input, or else as the stock
 * result); otherwise (say, generated code importing another copy of
 * `@bufbuild/protobuf`, which reads nothing from the reader) that type keeps
 * the stock decode. A message the decoder stopped reading early (a zero tag)
 * leaves the check to the next one. The reader sets four non-public fields (`buf`,
 * `len`, `pos`, `view`), pinned by test/codec.test.ts like the writer's.
 *
 * @internal
 */

import { BinaryReader } from "@bufbuild/protobuf/wire"

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
  /** Encodes in a row that used under an eighth of a buffer past `alwaysKeptBytes` (see `shrinkAfter`). */
  slack: number
}

/**
 * A reused writer's buffer up to this size (grown by the writer as messages
 * need) is kept for good.
 */
export const alwaysKeptBytes = 64 * 1024

/**
 * The largest buffer the reused writer keeps while large messages keep
 * coming. The writer sizes its buffer for the worst case (a string field
 * reserves 3 bytes per UTF-16 unit) and rounds up to a power of two, so a
 * 1 MiB string takes a 4 MiB buffer. A fresh one costs far more than the
 * encode (the writer zero-fills it and every page is touched: about 630 µs
 * for a 1 MiB string, against 35 µs into a kept buffer), so large messages
 * in a row reuse it. A message that grows the buffer past this size takes
 * it with it (no copy) and the writer is replaced.
 */
export const maxKeptBytes = 8 * 1024 * 1024

/**
 * A buffer past `alwaysKeptBytes` is let go after this many encodes in a row
 * that used under an eighth of it, so that one burst of large messages does
 * not pin it for the life of the process (an idle process keeps it until
 * then: at most `maxKeptBytes` per writer class, in practice one).
 */
export const shrinkAfter = 64

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
    const entry: SharedWriter = { make, writer: probe, busy: false, slack: 0 }
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

/** How a `serializer` hands its bytes over. */
export interface SerializerOptions {
  /**
   * The fast path returns a Buffer over the reused writer's own bytes, valid
   * only until the next encode, instead of a copy. Only for grpc-js's
   * server: it copies what `responseSerialize` returns into the message's
   * frame before anything else runs (`ServerInterceptingCall.serializeMessage`
   * in grpc-js 1.14; test/server.calls.test.ts streams distinct messages
   * past the flow-control window to pin it). Never for a client: grpc-js's
   * retry layer keeps request messages for later attempts.
   */
  readonly lend?: boolean | undefined
}

/**
 * grpc-js's `serialize` for one ts-proto message type.
 *
 * @internal
 */
export const serializer = (messageType: Encoder, options?: SerializerOptions): (message: unknown) => Buffer => {
  const lend = options?.lend === true
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
      if (buffer.byteLength > maxKeptBytes) {
        entry.writer = new entry.make()
        entry.slack = 0
        return Buffer.from(buffer.buffer, buffer.byteOffset, length)
      }
      let out: Buffer
      if (lend) out = Buffer.from(buffer.buffer, buffer.byteOffset, length)
      else {
        out = Buffer.allocUnsafe(length)
        out.set(buffer.subarray(0, length))
      }
      writer.pos = 0
      if (buffer.byteLength > alwaysKeptBytes) {
        if (length * 8 >= buffer.byteLength) entry.slack = 0
        else if (++entry.slack >= shrinkAfter) {
          entry.writer = new entry.make()
          entry.slack = 0
        }
      }
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
 * `BinaryReader`'s non-public fields, as the reused reader sets them
 * (verified per message type before use, pinned by test/codec.test.ts).
 */
interface ReaderFields {
  buf: Uint8Array
  len: number
  pos: number
  view: DataView
  /** ts-proto's recursion depth, which its generated `decode` keeps on the reader. */
  __tsProtoDecodeDepth: number
}

const empty = new Uint8Array(0)

/** Node's own UTF-8 decoding of a Buffer range, where the runtime has it (feature-detected). */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (start: number, end: number) => string }).utf8Slice

/**
 * One reader for every decode, reset onto each message's bytes. Its fields
 * are reached through `ReaderFields` because `BinaryReader` declares them
 * private.
 */
class ReusedReader extends BinaryReader {
  /** Set while a decode runs: a re-entrant decode takes the stock path. */
  busy = false
  /** Created on first use per message (see the `view` accessor below). */
  lazyView: DataView | undefined = undefined
  /** Whether `buf` is a Node Buffer (grpc-js always gives one). */
  nodeBuffer = false

  constructor() {
    super(empty)
    // ts-proto's recursion guard, created once here instead of per message.
    ;(this as unknown as ReaderFields).__tsProtoDecodeDepth = 0
  }

  reset(bytes: Uint8Array): this {
    const fields = this as unknown as ReaderFields
    fields.buf = bytes
    fields.len = bytes.length
    fields.pos = 0
    // As on a fresh reader, whatever a decode that threw left behind.
    fields.__tsProtoDecodeDepth = 0
    this.lazyView = undefined
    this.nodeBuffer = utf8Slice !== undefined && Buffer.isBuffer(bytes)
    return this
  }

  /** Lets go of the message's bytes, so that the reader does not keep them alive. */
  release(): void {
    // Only what keeps the message alive; `reset` sets the rest before the next use.
    ;(this as unknown as ReaderFields).buf = empty
    this.lazyView = undefined
    this.busy = false
  }

  override string(strict?: boolean): string {
    if (strict === true || !this.nodeBuffer) return super.string(strict)
    const fields = this as unknown as ReaderFields
    const length = this.uint32()
    const start = fields.pos
    fields.pos = start + length
    // BinaryReader's own bounds check and error.
    if (fields.pos > fields.len) throw new RangeError("premature EOF")
    // Invalid UTF-8 becomes U+FFFD, as with BinaryReader's non-strict
    // TextDecoder (test/codec.test.ts compares the two).
    return utf8Slice!.call(fields.buf, start, fields.pos)
  }
}

// `view` becomes an accessor: BinaryReader's constructor assigns it (the
// setter keeps it), fixed-width reads get it (built on first use).
Object.defineProperty(ReusedReader.prototype, "view", {
  get(this: ReusedReader): DataView {
    const buf = (this as unknown as ReaderFields).buf
    return this.lazyView ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  },
  set(this: ReusedReader, view: DataView) {
    this.lazyView = view
  }
})

const reader = new ReusedReader()

/** What decoding needs of a ts-proto codec, and encoding to check the fast path. */
interface DecodeFn<T> {
  decode(input: Uint8Array | BinaryReader): T
  encode(message: T): { finish(): Uint8Array }
}

/**
 * Decodes `bytes` with the reused reader and checks the result: it must have
 * consumed every byte and re-encode to `bytes` (what ts-proto and grpc-js
 * peers send), or else to what the stock decode's result re-encodes to.
 * Returns a correct message either way, and whether the reader can be used
 * for this type (undefined: not known yet).
 */
const verifyReader = <T>(type: DecodeFn<T>, bytes: Buffer): { readonly message: T; readonly fast: boolean | undefined } => {
  if (reader.busy) return { message: type.decode(bytes), fast: undefined }
  reader.busy = true
  let message: T
  let read: number
  try {
    message = type.decode(reader.reset(bytes))
    read = (reader as unknown as ReaderFields).pos
  } catch {
    reader.release()
    // Malformed input throws here as it does below (and the question stays
    // open); a decoder that cannot take the reader throws only here.
    const stock = type.decode(bytes)
    return { message: stock, fast: false }
  }
  reader.release()
  // A decoder that did not read the reader at all treats it as bytes (another
  // copy of BinaryReader): never the fast path. One that stopped before the
  // end (ts-proto stops at a zero or end-group tag) says nothing either way,
  // and any client can send such a message first: the question stays open.
  if (read === 0) return { message: type.decode(bytes), fast: false }
  if (read !== bytes.length) return { message: type.decode(bytes), fast: undefined }
  const encoded = type.encode(message).finish()
  if (sameBytes(encoded, bytes)) return { message, fast: true }
  const stock = type.decode(bytes)
  return { message: stock, fast: sameBytes(encoded, type.encode(stock).finish()) }
}

/**
 * The deserializer grpc-js gets where the adapter decodes messages itself
 * (the server's requests, server/decodeRequest.ts; the client's responses,
 * client/decodeResponse.ts): each message's bytes, as they are.
 *
 * @internal
 */
export const passBytes = (bytes: Buffer): Buffer => bytes

/**
 * grpc-js's `deserialize` for one ts-proto message type.
 *
 * @internal
 */
export const deserializer = <T>(messageType: Decoder<T> & Encoder): (bytes: Buffer) => T => {
  // ts-proto's decode takes a reader too (`decode(input: BinaryReader |
  // Uint8Array)`); the public MessageType leaves it out, see `serializer`.
  const type = messageType as unknown as DecodeFn<T>
  // undefined: not checked yet (an empty message decodes the same either way).
  let fast: boolean | undefined
  return (bytes) => {
    if (fast === true && !reader.busy) {
      reader.busy = true
      try {
        return type.decode(reader.reset(bytes))
      } finally {
        reader.release()
      }
    }
    if (fast === undefined && bytes.length > 0) {
      const checked = verifyReader(type, bytes)
      fast = checked.fast
      return checked.message
    }
    return type.decode(bytes)
  }
}

/**
 * Whether decoding `bytes` with `messageType` takes the reused reader. For
 * tests that pin the reader's fields.
 *
 * @internal
 */
export const decodesFast = <T>(messageType: Decoder<T> & Encoder, bytes: Buffer): boolean =>
  verifyReader(messageType as unknown as DecodeFn<T>, bytes).fast === true

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

/**
 * How many bytes the reused reader still points at (0 between decodes), for tests.
 *
 * @internal
 */
export const retainedReaderBytes = (): number => (reader as unknown as ReaderFields).buf.length
