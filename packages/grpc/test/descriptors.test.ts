/**
 * The descriptors protoc-gen-fiber-grpc embeds (what GrpcReflection serves)
 * are byte for byte what `buf build` compiles from the same .proto files,
 * minus source info: the compiler's own output, not a rebuilt one.
 */
import { assert, describe, it } from "@effect/vitest"
import { BinaryReader } from "@bufbuild/protobuf/wire"
import { file as echoProto } from "@fiber-grpc/protos/grpc/examples/echo/echo.descriptor"
import { file as testProto } from "@fiber-grpc/protos/grpc/testing/test.descriptor"
import { file as hashNameProto } from "@fiber-grpc/protos/hash_name/hash_name.descriptor"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { file as codeProto } from "../src/generated/google/rpc/code.descriptor.js"
import { file as errorDetailsProto } from "../src/generated/google/rpc/error_details.descriptor.js"
import { file as statusProto } from "../src/generated/google/rpc/status.descriptor.js"
import { file as healthProto } from "../src/generated/grpc/health/v1/health.descriptor.js"
import { file as reflectionV1Proto } from "../src/generated/grpc/reflection/v1/reflection.descriptor.js"
import { file as reflectionV1alphaProto } from "../src/generated/grpc/reflection/v1alpha/reflection.descriptor.js"
import type { FileDescriptor } from "../src/GrpcReflection.js"

/** Every file of `buf build`'s FileDescriptorSet, by name, as its raw bytes. */
const bufBuild = (): Map<string, Buffer> => {
  const root = fileURLToPath(new URL("../../..", import.meta.url))
  const dir = mkdtempSync(join(tmpdir(), "descriptors-"))
  try {
    const out = join(dir, "set.binpb")
    execFileSync(join(root, "node_modules/.bin/buf"), ["build", "-o", out, "--as-file-descriptor-set", "--exclude-source-info"], {
      cwd: root
    })
    const files = new Map<string, Buffer>()
    const set = new BinaryReader(readFileSync(out))
    while (set.pos < set.len) {
      const [field, wireType] = set.tag()
      if (field !== 1) {
        set.skip(wireType)
        continue
      }
      const bytes = Buffer.from(set.bytes())
      const file = new BinaryReader(bytes)
      file.tag() // FileDescriptorProto.name comes first
      files.set(file.string(), bytes)
    }
    return files
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const embedded = (roots: ReadonlyArray<FileDescriptor>): Map<string, Buffer> => {
  const out = new Map<string, Buffer>()
  const add = (f: FileDescriptor) => {
    if (out.has(f.name)) return
    out.set(f.name, Buffer.from(f.descriptor, "base64"))
    f.dependencies.forEach(add)
  }
  roots.forEach(add)
  return out
}

describe("embedded descriptors", () => {
  it("equal buf build's, byte for byte, for every file and dependency (well-known types included)", () => {
    const compiled = bufBuild()
    const ours = embedded([
      echoProto,
      testProto,
      hashNameProto,
      codeProto,
      errorDetailsProto,
      statusProto,
      healthProto,
      reflectionV1Proto,
      reflectionV1alphaProto
    ])
    assert.includeMembers([...ours.keys()], ["google/protobuf/duration.proto", "google/protobuf/any.proto", "grpc/testing/messages.proto"])
    for (const [name, bytes] of ours) {
      assert.isTrue(compiled.get(name)?.equals(bytes), name)
    }
  })

  // Why the plugin exists: ts-proto's own embedded descriptor (outputSchema=true)
  // is rebuilt through proto3-style defaults. Pinned, so a ts-proto that fixes
  // it shows up here.
  it("ts-proto's outputSchema=true descriptor gives every field oneofIndex 0, in a oneof or not", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url))
    const dir = mkdtempSync(join(tmpdir(), "ts-proto-schema-"))
    try {
      const template = join(dir, "buf.gen.yaml")
      writeFileSync(
        template,
        JSON.stringify({
          version: "v2",
          inputs: [{ directory: "protos", paths: ["protos/grpc/reflection/v1"] }],
          plugins: [{ local: join(root, "node_modules/.bin/protoc-gen-ts_proto"), out: dir, opt: ["outputSchema=true"] }]
        })
      )
      execFileSync(join(root, "node_modules/.bin/buf"), ["generate", "--template", template], { cwd: root })
      const generated = readFileSync(join(dir, "grpc/reflection/v1/reflection.ts"), "utf8")
      const metadata = generated.slice(generated.indexOf("export const protoMetadata"))
      const field = (name: string) => {
        const at = metadata.indexOf(`"name": "${name}"`)
        return /"oneofIndex": (\d+)/.exec(metadata.slice(at))?.[1]
      }
      // `host` is in no oneof; `file_by_filename` is in oneof 0 (message_request): same value.
      assert.strictEqual(field("host"), "0")
      assert.strictEqual(field("file_by_filename"), "0")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
