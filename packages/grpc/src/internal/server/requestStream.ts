/**
 * The request Stream of a client-streaming or bidi call.
 *
 * grpc-js's server call is an object-mode Readable fed the Readable way: each
 * `_read()` asks the call for one message (`startRead`), and grpc-js hands it
 * over with `push(message)` once it is decoded, or `push(null)` at the
 * client's half-close. It pauses the HTTP/2 stream while any message it has
 * received is not asked for, so reading on demand gives backpressure all the
 * way to the client's flow-control window.
 *
 * The adapter owns the call, so it takes that protocol over: `push` on the
 * call object is replaced with one that appends to the reader's buffer, and
 * the reader asks with `_read()` while it holds fewer than `readAhead`
 * messages (16, Node's object-mode high-water mark, what the Readable kept).
 * A pull takes the whole buffer. So Node's Readable machinery (its own
 * buffer, a `'readable'` event, a `read()` per message, `process.nextTick`s
 * per refill) and a Stream adapter over it are off the per-message path, and
 * a call sets up one small object instead of `finished()` listeners and a
 * Scope. Against proto-loader (README "Where the streaming overhead went"),
 * per client-streamed message: 0.94-0.98× instead of 1.12× from h2load,
 * 0.93-0.98× instead of 1.31× from grpc-js clients; per client-streaming
 * call of one message, 1.12× instead of 1.72×.
 *
 * `requestStream.test.ts` pins the grpc-js side: nothing pushed unasked, at
 * most one message per `_read()`, in order, then `push(null)`.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Cause, Effect, Stream } from "effect"
import * as Arr from "effect/Array"
import * as GrpcError from "../../GrpcError.js"

/** Messages asked for ahead of the handler. */
const readAhead = 16
/** While a pull waits, it takes up to this many of the messages grpc-js has ready. */
const pullLimit = 64

type RequestCall<Req> = grpc.ServerReadableStream<Req, unknown> | grpc.ServerDuplexStream<Req, unknown>
type Pulled<Req> = Effect.Effect<Arr.NonEmptyReadonlyArray<Req>, GrpcError.GrpcError | Cause.Done>

/**
 * One reader per call, shared by every run of the Stream: a second run (after
 * a `Stream.take`, say) goes on with the messages the first one had asked for.
 */
export const requestStream = <Req>(call: RequestCall<Req>): Stream.Stream<Req, GrpcError.GrpcError> =>
  Stream.fromPull(Effect.succeed(new RequestReader(call).pull))

class RequestReader<Req> {
  private buffer: Array<Req> = []
  private ended = false
  /** A `_read()` grpc-js has not answered yet (it answers each with one `push`). */
  private asked = false
  private filling = false
  private waiting: ((pulled: Pulled<Req>) => void) | undefined
  private wakeScheduled = false
  readonly pull: Pulled<Req> = Effect.suspend(() => this.take())

  constructor(private readonly call: RequestCall<Req>) {
    // `push` is Node's Readable method, which grpc-js calls on this object
    // for every message and the half-close; replacing it on the instance is
    // how the reader receives them (see above).
    call.push = (message: Req | null) => this.received(message)
    // A pull still waiting when the call ends fails with CANCELLED. Only a
    // reader outside the handler's fiber can be waiting then: the handler is
    // interrupted on 'cancelled' (runHandler.ts) and grpc-js destroys the
    // call, so 'close' comes a tick later and never turns that interruption
    // into a failure.
    call.once("close", this.wake)
  }

  private received(message: Req | null): boolean {
    this.asked = false
    if (message === null) this.ended = true
    else this.buffer.push(message)
    if (this.waiting === undefined) {
      this.fill(readAhead)
    } else {
      // Keep asking, and wake the pull from `setImmediate`: by then every
      // message of this turn of the event loop is in. grpc-js decodes each
      // message after a microtask of its own, and its own client sends each
      // message in a DATA frame of its own, so a pull woken at once got one
      // message (1.35-1.40x proto-loader per message under h2load); from
      // process.nextTick, the messages of one DATA frame (0.94-0.98x under
      // h2load, but 1.19x from grpc-js clients, against 0.93-0.98x now).
      this.fill(pullLimit)
      if (!this.wakeScheduled) {
        this.wakeScheduled = true
        setImmediate(this.wake)
      }
    }
    return true
  }

  /** Asks grpc-js for messages until `limit` are buffered or the next is not ready. */
  private fill(limit: number): void {
    if (this.filling) return
    this.filling = true
    // grpc-js answers a `_read()` synchronously when it has the message
    // decoded already: this loop takes in everything ready at once.
    while (!this.asked && !this.ended && !this.call.cancelled && this.buffer.length < limit) {
      this.asked = true
      this.call._read(1)
    }
    this.filling = false
  }

  private take(): Pulled<Req> {
    this.fill(pullLimit)
    const chunk = this.buffer
    if (Arr.isArrayNonEmpty(chunk)) {
      this.buffer = []
      this.fill(readAhead)
      return Effect.succeed(chunk)
    }
    if (this.ended) return Cause.done()
    if (this.call.cancelled) return Effect.fail(GrpcError.make(GrpcError.Status.CANCELLED, "The call ended before its requests did"))
    return Effect.callback<Arr.NonEmptyReadonlyArray<Req>, GrpcError.GrpcError | Cause.Done>((resume) => {
      this.waiting = resume
      return Effect.sync(() => {
        this.waiting = undefined
      })
    })
  }

  private readonly wake = (): void => {
    this.wakeScheduled = false
    const resume = this.waiting
    if (resume === undefined) return
    this.waiting = undefined
    resume(this.pull)
  }
}
