#!/usr/bin/env node
// protoc-gen-fiber-grpc: a protoc / buf plugin that writes, next to ts-proto's
// `x.ts`, an `x.descriptor.ts` holding the exact FileDescriptorProto that
// protoc or buf compiled for `x.proto` (base64), with links to the files it
// imports. GrpcReflection serves these bytes, so reflection works in a bundle
// without .proto files at runtime.
//
// Why not ts-proto's `outputSchema=true`: its `protoMetadata.fileDescriptor`
// is rebuilt through proto3-style defaults, so it cannot tell "oneof_index 0"
// from "no oneof" (every field gets `oneofIndex: 0`, so encoded, the members
// of a message's first oneof lose it), and encoding it needs the
// `ts-proto-descriptors` package at runtime. Here the
// compiler's own bytes are copied, minus `source_code_info` (comments and
// spans, which reflection clients do not need).
//
// Options (buf.gen.yaml `opt:`): `importSuffix=.js` (default `.js`) for the
// imports between generated files, like ts-proto's option of the same name.
//
// Plain JavaScript with no dependencies, so it runs on any Node >= 18.
import { readFileSync, writeSync } from "node:fs"

// --- protobuf wire format, only what a CodeGeneratorRequest needs -----------

/** Reads the fields of one message: [{ number, wireType, value (Uint8Array for LEN, bigint/number otherwise), raw }]. */
const fields = (bytes) => {
  const out = []
  let pos = 0
  const varint = () => {
    let result = 0n
    let shift = 0n
    for (;;) {
      const b = bytes[pos++]
      if (b === undefined) throw new Error("truncated varint")
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
      shift += 7n
    }
  }
  while (pos < bytes.length) {
    const start = pos
    const tag = Number(varint())
    const number = tag >>> 3
    const wireType = tag & 7
    let value
    if (wireType === 0) value = varint()
    else if (wireType === 1) (value = bytes.subarray(pos, pos + 8)), (pos += 8)
    else if (wireType === 2) {
      const length = Number(varint())
      value = bytes.subarray(pos, pos + length)
      pos += length
    } else if (wireType === 5) (value = bytes.subarray(pos, pos + 4)), (pos += 4)
    else throw new Error(`unsupported wire type ${wireType}`)
    out.push({ number, wireType, value, raw: bytes.subarray(start, pos) })
  }
  return out
}

const encodeVarint = (n) => {
  const out = []
  let v = BigInt(n)
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return Buffer.from(out)
}
const lenField = (number, payload) =>
  Buffer.concat([encodeVarint((number << 3) | 2), encodeVarint(payload.length), payload])
const varintField = (number, value) => Buffer.concat([encodeVarint(number << 3), encodeVarint(value)])
const text = (u8) => Buffer.from(u8).toString("utf8")

// --- the plugin --------------------------------------------------------------

const request = fields(new Uint8Array(readFileSync(0)))
const toGenerate = new Set(request.filter((f) => f.number === 1).map((f) => text(f.value)))
const parameter = request.filter((f) => f.number === 2).map((f) => text(f.value)).join(",")
const importSuffix = parameter
  .split(",")
  .map((p) => p.trim().split("="))
  .find(([key]) => key === "importSuffix")?.[1] ?? ".js"

/** name -> { bytes (without source_code_info), dependencies } for every file protoc sent. */
const files = new Map()
for (const f of request.filter((f) => f.number === 15)) {
  let name = ""
  const dependencies = []
  const kept = []
  for (const field of fields(f.value)) {
    if (field.number === 1) name = text(field.value)
    if (field.number === 3) dependencies.push(text(field.value))
    if (field.number !== 9) kept.push(field.raw) // 9 = source_code_info
  }
  files.set(name, { bytes: Buffer.concat(kept), dependencies })
}

const base = (name) => name.replace(/\.proto$/, "")
const constName = (name) => `file_${base(name).replace(/[^A-Za-z0-9]/g, "_")}`
const relativeImport = (from, to) => {
  const fromDir = from.split("/").slice(0, -1)
  const toParts = to.split("/")
  let common = 0
  while (common < fromDir.length && common < toParts.length - 1 && fromDir[common] === toParts[common]) common++
  const up = fromDir.length - common
  const rest = toParts.slice(common).join("/")
  return (up === 0 ? "./" : "../".repeat(up)) + rest
}

const generate = (name) => {
  const imports = []
  const inline = []
  const seen = new Set()
  // Dependencies generated in this run are imported; the others (e.g. the
  // well-known types) are embedded in this file, with their own dependencies.
  const reference = (dep) => {
    if (toGenerate.has(dep)) {
      if (!seen.has(dep)) {
        seen.add(dep)
        imports.push(`import { file as ${constName(dep)} } from "${relativeImport(name, base(dep))}.descriptor${importSuffix}";`)
      }
    } else if (!seen.has(dep)) {
      seen.add(dep)
      const file = files.get(dep)
      if (file === undefined) throw new Error(`${name} imports ${dep}, which protoc did not send`)
      const deps = file.dependencies.map(reference)
      inline.push(
        `const ${constName(dep)}: FileDescriptor = {\n  name: ${JSON.stringify(dep)},\n  descriptor: "${file.bytes.toString("base64")}",\n  dependencies: [${deps.join(", ")}],\n};`
      )
    }
    return constName(dep)
  }
  const file = files.get(name)
  const deps = file.dependencies.map(reference)
  return [
    "// Code generated by protoc-gen-fiber-grpc. DO NOT EDIT.",
    `// source: ${name}`,
    "",
    ...imports,
    ...(imports.length > 0 ? [""] : []),
    "/** A serialized `google.protobuf.FileDescriptorProto` (base64) and the files it imports. */",
    "export interface FileDescriptor {",
    "  readonly name: string;",
    "  readonly descriptor: string;",
    "  readonly dependencies: ReadonlyArray<FileDescriptor>;",
    "}",
    "",
    ...inline.flatMap((s) => [s, ""]),
    `/** The descriptor of ${name}, as compiled by protoc / buf, for server reflection. */`,
    "export const file: FileDescriptor = {",
    `  name: ${JSON.stringify(name)},`,
    `  descriptor: "${file.bytes.toString("base64")}",`,
    `  dependencies: [${deps.join(", ")}],`,
    "};",
    ""
  ].join("\n")
}

const response = []
for (const name of toGenerate) {
  const content = Buffer.from(generate(name), "utf8")
  response.push(lenField(15, Buffer.concat([lenField(1, Buffer.from(`${base(name)}.descriptor.ts`)), lenField(15, content)])))
}
// supported_features = FEATURE_PROTO3_OPTIONAL: the bytes are copied as they are.
const out = Buffer.concat([varintField(2, 1), ...response])
let written = 0
while (written < out.length) written += writeSync(1, out, written)
