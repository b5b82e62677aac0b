/**
 * Request/reply over Node's IPC channel, used between the orchestrator and
 * its child processes (servers and load generators) in both directions.
 */
import type { ChildProcess } from "node:child_process"

export interface Endpoint {
  send(message: unknown): boolean
  on(event: "message", listener: (message: unknown) => void): unknown
}

interface Envelope {
  readonly rpc: "req" | "res"
  readonly id: number
  readonly body: unknown
}

const isEnvelope = (m: unknown): m is Envelope =>
  typeof m === "object" && m !== null && "rpc" in m && "id" in m

export interface Peer {
  /** Sends `body` and resolves with the other side's reply. */
  readonly request: <A>(body: unknown) => Promise<A>
  /** Sends a one-way message (delivered to `onEvent` on the other side). */
  readonly notify: (body: unknown) => void
}

export const connect = (
  endpoint: Endpoint,
  handle: (body: unknown) => unknown,
  onEvent: (body: unknown) => void = () => {}
): Peer => {
  let next = 0
  const pending = new Map<number, (body: unknown) => void>()
  endpoint.on("message", (m) => {
    if (!isEnvelope(m)) return onEvent(m)
    if (m.rpc === "res") {
      const resolve = pending.get(m.id)
      pending.delete(m.id)
      resolve?.(m.body)
    } else {
      void Promise.resolve(handle(m.body)).then((body) => endpoint.send({ rpc: "res", id: m.id, body }))
    }
  })
  return {
    request: <A>(body: unknown) =>
      new Promise<A>((resolve) => {
        const id = next++
        // The reply's shape is fixed by the message protocol of each caller.
        pending.set(id, resolve as (body: unknown) => void)
        endpoint.send({ rpc: "req", id, body })
      }),
    notify: (body) => void endpoint.send(body)
  }
}

/** This process's own IPC channel (it must have been spawned with one). */
export const parentEndpoint = (): Endpoint => {
  if (process.send === undefined) throw new Error("this process must be started with an IPC channel")
  const send = process.send.bind(process)
  return { send: (m) => send(m), on: (e, l) => process.on(e, l) }
}

export const childEndpoint = (child: ChildProcess): Endpoint => ({
  send: (m) => child.send(m as never),
  on: (e, l) => child.on(e, l)
})

/** Same clock in every process on this machine (CLOCK_MONOTONIC), in microseconds. */
export const nowMicros = (): number => Number(process.hrtime.bigint() / 1000n)
