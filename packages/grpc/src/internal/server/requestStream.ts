/**
 * The request Stream of a client-streaming or bidi call.
 *
 * The call is read through grpc-js's `push` and `_read` (../callReader.ts):
 * up to `readAhead` messages (16, what Node's object-mode Readable kept) are
 * asked for ahead of the handler, and a pull takes all that are held. A call
 * sets up one small object instead of `NodeStream`'s `finished()` listeners
 * and a Scope. Against proto-loader (README "Where the streaming overhead
 * went"), per client-streamed message: 0.94-0.98× instead of 1.12× from
 * h2load, 0.93-0.98× instead of 1.31× from grpc-js clients; per
 * client-streaming call of one message, 1.12× instead of 1.72×.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import { Cause, Effect, Stream } from "effect"
import type * as Arr from "effect/Array"
import * as GrpcError from "../../GrpcError.js"
import { CallReader } from "../callReader.js"
import { undecodableRequest } from "./decodeRequest.js"

/** Messages asked for ahead of the handler. */
const readAhead = 16
/** While a pull waits, it takes up to this many of the messages grpc-js has ready. */
const pullLimit = 64

/** A call whose requests grpc-js hands over as bytes (decodeRequest.ts). */
type RequestCall = grpc.ServerReadableStream<Buffer, unknown> | grpc.ServerDuplexStream<Buffer, unknown>
type Pulled<Req> = Effect.Effect<Arr.NonEmptyReadonlyArray<Req>, GrpcError.GrpcError | Cause.Done>

/**
 * One reader per call, shared by every run of the Stream: a second run (after
 * a `Stream.take`, say) goes on with the messages the first one had asked for.
 */
export const requestStream = <Req>(
  call: RequestCall,
  decode: (bytes: Buffer) => Req
): Stream.Stream<Req, GrpcError.GrpcError> => Stream.fromPull(Effect.succeed(new RequestReader(call, decode).pull))

class RequestReader<Req> {
  private readonly reader: CallReader<Req>
  private waiting: ((pulled: Pulled<Req>) => void) | undefined
  private wakeScheduled = false
  readonly pull: Pulled<Req> = Effect.suspend(() => this.take())

  constructor(private readonly call: RequestCall, decode: (bytes: Buffer) => Req) {
    // Messages are decoded as a pull hands them to the handler (decodeRequest.ts).
    this.reader = new CallReader(call, () => this.received(), decode)
    // A pull still waiting when the call ends fails with CANCELLED. Only a
    // reader outside the handler's fiber can be waiting then: the handler is
    // interrupted on 'cancelled' (runHandler.ts) and grpc-js destroys the
    // call, so 'close' comes a tick later and never turns that interruption
    // into a failure.
    call.once("close", this.wake)
  }

  private received(): void {
    if (this.waiting === undefined) {
      this.reader.fill(readAhead)
    } else {
      // Keep asking, and wake the pull from `setImmediate`: by then every
      // message of this turn of the event loop is in. grpc-js decodes each
      // message after a microtask of its own, and its own client sends each
      // message in a DATA frame of its own, so a pull woken at once got one
      // message (1.35-1.40x proto-loader per message under h2load); from
      // process.nextTick, the messages of one DATA frame (0.94-0.98x under
      // h2load, but 1.19x from grpc-js clients, against 0.93-0.98x now).
      this.reader.fill(pullLimit)
      if (!this.wakeScheduled) {
        this.wakeScheduled = true
        setImmediate(this.wake)
      }
    }
  }

  private take(): Pulled<Req> {
    this.reader.fill(pullLimit)
    const chunk = this.reader.take()
    if (chunk !== undefined) {
      this.reader.fill(readAhead)
      return Effect.succeed(chunk)
    }
    if (this.reader.undecodable !== undefined) return Effect.fail(undecodableRequest())
    if (this.reader.ended) return Cause.done()
    if (this.call.cancelled) return Effect.fail(GrpcError.make(GrpcError.Status.CANCELLED, "The call ended before its requests did"))
    return this.waitForMessages
  }

  private readonly stopWaiting = Effect.sync(() => {
    this.waiting = undefined
  })
  /** Built once per call, not per wait: a pull that finds nothing parks its resume here. */
  private readonly waitForMessages: Pulled<Req> = Effect.callback((resume) => {
    this.waiting = resume
    return this.stopWaiting
  })

  private readonly wake = (): void => {
    this.wakeScheduled = false
    const resume = this.waiting
    if (resume === undefined) return
    this.waiting = undefined
    resume(this.pull)
  }
}
