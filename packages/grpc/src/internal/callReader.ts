/**
 * Reading a grpc-js call's messages without Node's Readable machinery: the
 * server's request Stream (server/requestStream.ts) and the client's
 * response Stream (client/responseStream.ts).
 *
 * grpc-js feeds a call the way any Node Readable is fed: each `_read()` asks
 * it for one message (`startRead`), and grpc-js answers with `push(message)`
 * once it has run its deserializer (here `passBytes`, so the message's
 * bytes), or `push(null)` at the end. It stops reading from
 * HTTP/2 while a received message is not asked for, so asking only while
 * fewer than a bound are held keeps flow control in charge. The adapter owns
 * its calls, so it takes that protocol over: `push` on the call object is
 * replaced with one that appends to this reader's buffer. Node's Readable
 * buffer, its events, a `read()` per message and its `process.nextTick`s are
 * then off the per-message path (README "Where the streaming overhead
 * went"). `requestStream.test.ts` pins what grpc-js does with `push` and
 * `_read`.
 *
 * @internal
 */
import * as Arr from "effect/Array"

/** A grpc-js call as the reader drives it: Node's Readable implementer protocol. */
export interface ReadableProtocol {
  push(chunk: unknown): boolean
  _read(size: number): void
}

export class CallReader<A> {
  /** Messages received (as grpc-js pushed them: their bytes) and not taken yet. */
  buffer: Array<Buffer> = []
  /** True once grpc-js has pushed the end (`push(null)`). */
  ended = false
  /**
   * What `decode` threw on a message. Reading stops there: the messages
   * before it are taken, and nothing after it.
   */
  undecodable: { readonly cause: unknown } | undefined
  /** A `_read()` grpc-js has not answered yet (it answers each with one `push`). */
  private asked = false
  private filling = false

  /**
   * `received` runs after every push, message or end. grpc-js pushes each
   * message's bytes (its deserializer is `passBytes`, codec.ts), and `take`
   * decodes them with `decode` as it hands them over
   * (server/decodeRequest.ts, client/decodeResponse.ts).
   */
  constructor(
    private readonly call: ReadableProtocol,
    received: () => void,
    private readonly decode: (bytes: Buffer) => A
  ) {
    // `push` is Node's Readable method, which grpc-js calls on this object;
    // replacing it on the instance is how the reader receives what it asked for.
    call.push = (message: Buffer | null) => {
      this.asked = false
      if (message === null) this.ended = true
      else this.buffer.push(message)
      received()
      return true
    }
  }

  /** Asks grpc-js for messages until `limit` are held or the next one is not ready. */
  fill(limit: number): void {
    if (this.filling) return
    this.filling = true
    // grpc-js's server answers a `_read()` synchronously when it has the
    // message decoded already: this loop takes in everything ready at once.
    // After a cancel grpc-js answers nothing, and the loop stops at `asked`.
    while (!this.asked && !this.ended && this.undecodable === undefined && this.buffer.length < limit) {
      this.asked = true
      this.call._read(1)
    }
    this.filling = false
  }

  /**
   * The messages held, decoded, leaving the buffer empty; `undefined` when
   * it holds none, or none decoded (then `undecodable` says why).
   */
  take(): Arr.NonEmptyArray<A> | undefined {
    const taken = this.buffer
    if (this.undecodable !== undefined || taken.length === 0) return undefined
    this.buffer = []
    const messages: Array<A> = []
    try {
      for (const bytes of taken) messages.push(this.decode(bytes))
    } catch (cause) {
      this.undecodable = { cause }
    }
    return Arr.isArrayNonEmpty(messages) ? messages : undefined
  }
}
