/**
 * Reading the messages of a grpc-js call as the chunks of an Effect Stream:
 * the server's request stream (client-streaming and bidi) and the client's
 * response stream (server-streaming and bidi) share this.
 *
 * grpc-js calls are object-mode Readables. The reader takes them in flowing
 * mode: each `'data'` event appends to a buffer, and when the buffer holds
 * `highWaterMark` messages the call is paused (grpc-js then stops reading
 * from HTTP/2, and flow control holds the peer back) until the consumer
 * takes the buffer. Flowing mode costs less per message than `read()` in
 * paused mode (what `NodeStream.fromReadable` does): `pnpm bench` measured
 * the server's client-streaming path at 1.16x raw grpc-js with it.
 *
 * A waiting consumer is woken from a microtask, not from each `'data'`
 * event: grpc-js delivers the messages of one HTTP/2 read one per
 * `process.nextTick`, all of which run before that microtask, so the consumer
 * takes them as one chunk instead of one Effect resumption per message (same
 * macrotask, so no added latency).
 *
 * @internal
 */
import { type Cause, Effect } from "effect"

/** The part of a grpc-js readable call the reader needs. */
export interface ReadableCall extends NodeJS.EventEmitter {
  pause(): unknown
  resume(): unknown
}

/** A non-empty chunk of messages, as a Stream's pull gives them. */
export type Chunk<A> = readonly [A, ...Array<A>]

/** Messages buffered before the call is paused (grpc-js's own Readable buffer holds 16 too). */
export const highWaterMark = 16

type Pull<A, E> = Effect.Effect<Chunk<A>, E | Cause.Done>

export class MessageReader<A, E> {
  private buffer: Array<A> = []
  private paused = false
  /** What a pull gives once the buffer is empty and no more messages will come. */
  private last: Effect.Effect<never, E | Cause.Done> | undefined = undefined
  /** A failure that wins over buffered messages. */
  private abort: Effect.Effect<never, E> | undefined = undefined
  private waiting: ((effect: Pull<A, E>) => void) | undefined = undefined
  private queued = false
  /** The Stream's pull: the buffered messages as one chunk, waiting for one if there are none. */
  readonly pull: Pull<A, E>
  private readonly wait: Pull<A, E>
  private readonly stopWaiting: Effect.Effect<void>

  constructor(private readonly call: ReadableCall) {
    // Closures as arguments, not named literals: tsx (esbuild's keepNames)
    // wraps every named function literal in a `__name` call per evaluation.
    this.pull = Effect.suspend(() => this.next())
    this.stopWaiting = Effect.sync(() => {
      this.waiting = undefined
    })
    this.wait = Effect.callback((resume) => {
      this.waiting = resume
      return this.stopWaiting
    })
    call.on("data", (message: A) => this.push(message))
  }

  /** No more messages: once the buffered ones are taken, pulls give `effect` (`Cause.done()` or a failure). */
  end(effect: Effect.Effect<never, E | Cause.Done>): void {
    this.last ??= effect
    this.notify()
  }

  /** Fails the next pull, ahead of any buffered message. */
  fail(effect: Effect.Effect<never, E>): void {
    this.abort ??= effect
    this.notify()
  }

  /**
   * The consumer has stopped: the call is paused so that it stops reading
   * (its peer is held back by flow control), and what is buffered stays for
   * a later run of the same Stream.
   */
  stop(): void {
    this.waiting = undefined
    if (!this.paused && this.last === undefined) {
      this.paused = true
      this.call.pause()
    }
  }

  private push(message: A): void {
    this.buffer.push(message)
    if (this.buffer.length >= highWaterMark && !this.paused) {
      this.paused = true
      this.call.pause()
    }
    this.notify()
  }

  private next(): Pull<A, E> {
    if (this.abort !== undefined) return this.abort
    if (this.buffer.length > 0) {
      // Non-empty: checked just above; the array type cannot say so.
      const chunk = this.buffer as unknown as Chunk<A>
      this.buffer = []
      if (this.paused) {
        this.paused = false
        this.call.resume()
      }
      return Effect.succeed(chunk)
    }
    if (this.last !== undefined) return this.last
    if (this.paused) {
      // Paused by a previous run's `stop`.
      this.paused = false
      this.call.resume()
    }
    return this.wait
  }

  private notify(): void {
    if (this.waiting !== undefined && !this.queued) {
      this.queued = true
      queueMicrotask(() => this.wake())
    }
  }

  private wake(): void {
    this.queued = false
    const resume = this.waiting
    this.waiting = undefined
    resume?.(this.pull)
  }
}
