/**
 * channelz is off by default on fiber-grpc's servers and channels (grpc-js
 * keeps it on, at a cost on every call and message), and on when asked for.
 * Read back through grpc-js's own channelz service, served by a plain
 * grpc-js server in the same process (channelz is process-wide).
 */
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { EchoDefinition } from "@fiber-grpc/protos/grpc/examples/echo/echo"
import { GrpcClient } from "../src/index.js"
import { rawServer, startEcho, unaryCall } from "./helpers.js"

/** The fields of channelz.proto's `Server` and `Channel` that the tests read (int64 as string). */
interface ChannelzServer {
  readonly data: { readonly calls_started: string }
  readonly listen_socket: ReadonlyArray<{ readonly name: string }>
}
interface ChannelzChannel {
  readonly data: { readonly target: string; readonly calls_started: string }
}

const Channelz = grpc.makeGenericClientConstructor(grpc.getChannelzServiceDefinition(), "Channelz")

/** A channelz client of a plain grpc-js admin server serving channelz. */
const channelzAdmin = Effect.gen(function*() {
  const admin = yield* rawServer({})
  admin.server.addService(grpc.getChannelzServiceDefinition(), grpc.getChannelzHandlers())
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new Channelz(`127.0.0.1:${admin.port}`, grpc.credentials.createInsecure())),
    (c) => Effect.sync(() => c.close())
  )
  // The generic client's methods are untyped (grpc-js builds them from the
  // service definition at runtime); the shapes are channelz.proto's.
  const call = <A>(method: string) =>
    Effect.callback<A, grpc.ServiceError>((resume) => {
      ;(client as unknown as Record<string, (req: object, cb: (e: grpc.ServiceError | null, r: A) => void) => void>)[method]!(
        {},
        (error, response) => resume(error ? Effect.fail(error) : Effect.succeed(response))
      )
    })
  return {
    servers: Effect.map(call<{ server: ReadonlyArray<ChannelzServer> }>("GetServers"), (r) => r.server),
    channels: Effect.map(call<{ channel: ReadonlyArray<ChannelzChannel> }>("GetTopChannels"), (r) => r.channel)
  }
})

const listensOn = (port: number) => (server: ChannelzServer) => server.listen_socket.some((s) => s.name.endsWith(`:${port}`))

describe("channelz", () => {
  it.effect("a server is left out of channelz by default and listed with its calls when `channelz: true`", () =>
    Effect.gen(function*() {
      const channelz = yield* channelzAdmin
      const quiet = yield* startEcho({ unaryEcho: Effect.succeed })
      const listed = yield* startEcho({ unaryEcho: Effect.succeed }, { channelz: true })
      for (const { client } of [quiet, listed]) {
        const observed = yield* unaryCall(client, { message: "hi" })
        assert.strictEqual(observed.code, grpc.status.OK)
      }
      const servers = yield* channelz.servers
      assert.isUndefined(servers.find(listensOn(quiet.server.port)))
      const entry = servers.find(listensOn(listed.server.port))
      assert.isDefined(entry)
      assert.strictEqual(Number(entry!.data.calls_started), 1)
    }))

  it.effect("a channel is left out of channelz by default and listed when `channelz: true`", () =>
    Effect.gen(function*() {
      const channelz = yield* channelzAdmin
      const { server } = yield* startEcho({ unaryEcho: Effect.succeed })
      // Two targets that reach the same server, one channel each (startEcho's
      // raw grpc-js client, channelz on, has a third).
      const quietTarget = `ipv4:127.0.0.1:${server.port}`
      const listedTarget = `dns:///127.0.0.1:${server.port}`
      const quiet = GrpcClient.makeWith(yield* GrpcClient.makeChannel(quietTarget), EchoDefinition)
      const listed = GrpcClient.makeWith(yield* GrpcClient.makeChannel(listedTarget, { channelz: true }), EchoDefinition)
      yield* quiet.unaryEcho({ message: "a" })
      yield* listed.unaryEcho({ message: "b" })
      const channels = yield* channelz.channels
      assert.isUndefined(channels.find((c) => c.data.target.includes(quietTarget)))
      const entry = channels.find((c) => c.data.target.includes(listedTarget))
      assert.isDefined(entry)
      assert.strictEqual(Number(entry!.data.calls_started), 1)
    }))
})
