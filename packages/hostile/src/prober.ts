/**
 * The suite's probe client, in a worker thread of its own: a UnaryEcho call
 * with a 500 ms deadline on its own connection, per request from the main
 * thread. The hostile client runs on the main thread, and its work there
 * (building inputs, tens of thousands of requests) must not fail a probe
 * that the server answered in time; in a worker, the deadline and the answer
 * are seen on an event loop the attack does not use.
 */
import * as grpc from "@grpc/grpc-js"
import { EchoClient } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { parentPort, Worker, workerData } from "node:worker_threads"

export interface Prober {
  /** One probe: true if the server answered within 500 ms. */
  readonly probe: () => Promise<boolean>
  readonly close: () => Promise<void>
}

/** Starts a probe worker for the server on 127.0.0.1:`port`. */
export const prober = (port: number): Prober => {
  const worker = new Worker(new URL(import.meta.url), { workerData: { port } })
  const waiting: Array<(ok: boolean) => void> = []
  worker.on("message", (ok: boolean) => waiting.shift()?.(ok))
  worker.on("error", () => waiting.splice(0).forEach((resolve) => resolve(false)))
  return {
    probe: () =>
      new Promise((resolve) => {
        waiting.push(resolve)
        worker.postMessage("probe")
      }),
    close: async () => {
      await worker.terminate()
    }
  }
}

if (parentPort !== null) {
  const port = parentPort
  const client = new EchoClient(`127.0.0.1:${(workerData as { port: number }).port}`, grpc.credentials.createInsecure(), {
    "grpc.enable_retries": 0
  })
  port.on("message", () => {
    let answered = false
    const reply = (ok: boolean) => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      port.postMessage(ok)
    }
    // grpc-js ends the call at its deadline; this is only a backstop.
    const timer = setTimeout(() => reply(false), 1000)
    client.unaryEcho({ message: "probe" }, new grpc.Metadata(), { deadline: Date.now() + 500 }, (error) => reply(error === null))
  })
}
