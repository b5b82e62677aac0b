/**
 * An index over serialized `FileDescriptorProto`s (as protoc-gen-fiber-grpc
 * embeds them): file by name, file by symbol, file by extension, with each
 * file's dependencies. Only names are read from the descriptors; the bytes
 * served are the compiler's own.
 *
 * @internal
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire"
import type { FileDescriptor } from "../GrpcReflection.js"

export interface IndexedFile {
  readonly name: string
  readonly bytes: Buffer
  readonly dependencies: ReadonlyArray<string>
}

export interface DescriptorIndex {
  readonly files: ReadonlyMap<string, IndexedFile>
  /** Fully-qualified symbol (no leading dot) -> file name. */
  readonly symbols: ReadonlyMap<string, string>
  /** Message types (fully qualified), to tell an unknown type from one without extensions. */
  readonly messages: ReadonlySet<string>
  /** `extendee:number` -> file name, and extendee -> numbers. */
  readonly extensions: ReadonlyMap<string, string>
  readonly extensionNumbers: ReadonlyMap<string, ReadonlyArray<number>>
}

/** Each length-delimited or varint field of a message, by number. */
const readFields = (
  bytes: Uint8Array,
  onField: (number: number, reader: BinaryReader, wireType: WireType) => boolean
): void => {
  const reader = new BinaryReader(bytes)
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag()
    if (!onField(number, reader, wireType)) reader.skip(wireType)
  }
}

const nameOf = (bytes: Uint8Array): string => {
  let name = ""
  readFields(bytes, (n, r) => n === 1 ? ((name = r.string()), true) : false)
  return name
}

/** Builds the index over `roots` and everything they import (first definition of a file name wins). */
export const makeIndex = (roots: ReadonlyArray<FileDescriptor>): DescriptorIndex => {
  const files = new Map<string, IndexedFile>()
  const symbols = new Map<string, string>()
  const messages = new Set<string>()
  const extensions = new Map<string, string>()
  const extensionNumbers = new Map<string, Array<number>>()

  const addExtension = (field: Uint8Array, scope: string, file: string) => {
    let name = ""
    let extendee = ""
    let number = 0
    readFields(field, (n, r) => {
      if (n === 1) name = r.string()
      else if (n === 2) extendee = r.string().replace(/^\./, "")
      else if (n === 3) number = r.int32()
      else return false
      return true
    })
    symbols.set(scope + name, file)
    extensions.set(`${extendee}:${number}`, file)
    const numbers = extensionNumbers.get(extendee) ?? []
    numbers.push(number)
    extensionNumbers.set(extendee, numbers)
  }

  const addEnum = (bytes: Uint8Array, scope: string, file: string) => {
    readFields(bytes, (n, r) => {
      if (n === 1) symbols.set(scope + r.string(), file)
      // Enum values are scoped like siblings of their enum, as in protobuf's own symbol tables.
      else if (n === 2) symbols.set(scope + nameOf(r.bytes()), file)
      else return false
      return true
    })
  }

  const addMessage = (bytes: Uint8Array, scope: string, file: string) => {
    const full = scope + nameOf(bytes)
    symbols.set(full, file)
    messages.add(full)
    const inner = `${full}.`
    readFields(bytes, (n, r) => {
      if (n === 2 || n === 8) symbols.set(inner + nameOf(r.bytes()), file) // fields, oneofs
      else if (n === 3) addMessage(r.bytes(), inner, file)
      else if (n === 4) addEnum(r.bytes(), inner, file)
      else if (n === 6) addExtension(r.bytes(), inner, file)
      else return false
      return true
    })
  }

  const addFile = (file: FileDescriptor): void => {
    if (files.has(file.name)) return
    const bytes = Buffer.from(file.descriptor, "base64")
    let pkg = ""
    const dependencies: Array<string> = []
    const sections: Array<[number, Uint8Array]> = []
    readFields(bytes, (n, r) => {
      if (n === 2) pkg = r.string()
      else if (n === 3) dependencies.push(r.string())
      else if (n === 4 || n === 5 || n === 6 || n === 7) sections.push([n, r.bytes()])
      else return false
      return true
    })
    files.set(file.name, { name: file.name, bytes, dependencies })
    const scope = pkg === "" ? "" : `${pkg}.`
    for (const [n, section] of sections) {
      if (n === 4) addMessage(section, scope, file.name)
      else if (n === 5) addEnum(section, scope, file.name)
      else if (n === 6) {
        const service = scope + nameOf(section)
        symbols.set(service, file.name)
        readFields(section, (m, r) => m === 2 ? (symbols.set(`${service}.${nameOf(r.bytes())}`, file.name), true) : false)
      } else addExtension(section, scope, file.name)
    }
    file.dependencies.forEach(addFile)
  }
  roots.forEach(addFile)
  return { files, symbols, messages, extensions, extensionNumbers }
}

/**
 * `name` and the files it depends on, transitively, breadth first; files in
 * `sent` are left out (except `name` itself) and the others are added to it.
 */
export const withDependencies = (
  index: DescriptorIndex,
  name: string,
  sent: Set<string>
): Array<Buffer> => {
  const out: Array<Buffer> = []
  const queue = [name]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const next = queue.shift()!
    if (seen.has(next)) continue
    seen.add(next)
    const file = index.files.get(next)
    // A dependency that was not embedded is left for the client to report.
    if (file === undefined) continue
    if (next === name || !sent.has(next)) {
      sent.add(next)
      out.push(file.bytes)
    }
    queue.push(...file.dependencies)
  }
  return out
}
