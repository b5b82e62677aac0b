/**
 * Echo: a GrpcServer, and a plain grpc-js client that cancels a streaming call
 * midway. The server's handler is interrupted: its finalizer runs and prints
 * how many messages it had sent. Exits 0 only if that happened.
 */
import { GrpcServer } from "@fiber-grpc/grpc"
import { EchoClient, EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { NodeRuntime } from "@effect/platform-node"
import * as grpc from "@grpc/grpc-js"
import { Console, Context, Deferred, Effect, Layer, Schedule, Stream } from "effect"

const program = Effect.gen(function*() {
  const started = Date.now()
  const at = () => `${String(Date.now() - started).padStart(5)} ms`
  const interrupted = yield* Deferred.make<number>()

  const Echo = GrpcServer.serve(EchoDefinition, {
    unaryEcho: (req) => Effect.succeed({ message: req.message }),
    // One message every 100 ms, forever, until the client goes away.
    serverStreamingEcho: (req) => {
      let sent = 0
      return Stream.fromSchedule(Schedule.spaced("100 millis")).pipe(
        Stream.map((i) => {
          sent++
          return { message: `${req.message} #${i + 1}` }
        }),
        Stream.onExit(() =>
          Console.log(`${at()}  server: handler finalizer ran after ${sent} messages`).pipe(
            Effect.andThen(Deferred.succeed(interrupted, sent))
          )
        )
      )
    },
    clientStreamingEcho: (requests) =>
      Stream.runFold(requests, () => "", (_, r) => r.message).pipe(Effect.map((message) => ({ message }))),
    bidirectionalStreamingEcho: (requests) => requests
  })

  const context = yield* Layer.build(Echo.pipe(Layer.provideMerge(GrpcServer.layer({ host: "127.0.0.1", port: 0 }))))
  const { port } = Context.get(context, GrpcServer.GrpcServer)
  yield* Console.log(`${at()}  server: listening on ${port}`)

  const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))

  const reply = yield* Effect.callback<string>((resume) => {
    client.unaryEcho({ message: "hello" }, (error, response) =>
      resume(error ? Effect.die(error) : Effect.succeed(response.message)))
  })
  yield* Console.log(`${at()}  client: UnaryEcho replied "${reply}"`)

  const stream = client.serverStreamingEcho({ message: "tick" })
  yield* Effect.callback<void>((resume) => {
    let received = 0
    stream.on("data", (m: { message: string }) => {
      console.log(`${at()}  client: received "${m.message}"`)
      if (++received === 3) {
        console.log(`${at()}  client: cancelling the stream`)
        stream.cancel()
        resume(Effect.void)
      }
    })
    stream.on("error", (e: grpc.ServiceError) => console.log(`${at()}  client: call ended with ${grpc.status[e.code]}`))
  })
  const sent = yield* Deferred.await(interrupted).pipe(Effect.timeout("2 seconds"))
  yield* Console.log(`\nverdict: the client's cancel interrupted the handler after ${sent} messages`)
})

NodeRuntime.runMain(Effect.scoped(program))
