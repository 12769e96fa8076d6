/**
 * Reassembles a layer's tar stream from its tar-split metadata and its files,
 * and hashes it: the diffID, exactly as Docker's `ChecksumForGraphID` computed
 * it through `asm.WriteOutputTarStream`.
 *
 * Segments are hashed as they are; each file entry with a size is opened
 * inside the layer root, read to its end, hashed, and its CRC-64 compared with
 * tar-split's. Size-0 entries are never opened. The size is the sum of the
 * entries' `size` fields. The first failure, in stream order, fails the layer.
 *
 * Plain TypeScript over fixed buffers: this runs in worker threads.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { pipeline } from "node:stream"
import { createGunzip } from "node:zlib"
import { equalBytes, latin1 } from "../Bytes.ts"
import { type CrcLaneProducer, LANE_SLOT_BYTES } from "../crc/CrcLane.ts"
import type { Crc64Engine } from "../crc/Crc64Engine.ts"
import { crc64Bytes } from "../crc/Crc64.ts"
import { LayerPathError, type LayerRoot } from "./LayerPath.ts"
import { errorCode, errorMessage } from "../platform/ErrorCode.ts"
import type { FileHandle } from "../platform/RawFiles.ts"
import { openRegularFileSync } from "../platform/RegularFile.ts"
import {
  BadEntry,
  decodeEntryText,
  entryDisplayName,
  entryNameBytes,
  EntryType,
  JsonValueSplitter,
  type TarSplitEntry,
} from "./TarSplit.ts"

/** Why the tar-split path failed for a layer. */
export type AssembleFailureReason =
  | "Unreadable" // tar-data.json.gz missing, unreadable, not gzip, truncated
  | "BadEntry" // not JSON, or an entry Go's decoder rejects, or a duplicate name
  | "CrcMismatch" // a file's content differs from what was pulled
  | "MissingFile" // a non-empty file named in the metadata is not in the layer
  | "UnsafePath" // a name or symlink leads out of the layer root
  | "NotRegularFile" // the name exists but is not a regular file
  | "ReadError" // the file could not be read

/** The tar-split path failed; `detail` names the file and the cause. */
export class AssembleFailure extends Error {
  override readonly name = "AssembleFailure"
  constructor(readonly reason: AssembleFailureReason, readonly detail: string) {
    super(detail)
  }
}

/** The result of a successful reassembly. */
export interface Assembled {
  /** Hex SHA-256 of the tar stream. */
  readonly sha256: string
  /** Sum of the entries' sizes: Docker's layer size. */
  readonly size: number
  /** Bytes in the tar stream. */
  readonly tarBytes: number
}

export interface AssembleOptions {
  readonly tarDataPath: string
  readonly root: LayerRoot
  /** Checksums the small files in this thread, straight from its input buffer. */
  readonly engine: Crc64Engine
  /** When given, big files may be checksummed by the lane thread... */
  readonly lane?: CrcLaneProducer | undefined
  /** ...when this says a core is free (handing over costs more than it gains when all cores are busy). */
  readonly offloadNow?: (() => boolean) | undefined
  /** Called now and then with the number of tar bytes hashed since the last call. */
  readonly onProgress?: ((bytes: number) => void) | undefined
  /**
   * Check without reading file contents (`plan`): the metadata decodes, every
   * file it names is in the layer, regular and inside it; no hash, no CRC.
   */
  readonly metadataOnly?: boolean | undefined
  /** Given every byte of the tar stream, in order, as it is hashed (`export` writes them); the array is reused after the call. */
  readonly onBytes?: ((bytes: Uint8Array) => void) | undefined
}

/** Files at least this big go to the CRC lane (smaller ones cost more to hand over than to checksum). */
const LANE_MIN_FILE = 256 * 1024
const PROGRESS_EVERY = 16 * 1024 * 1024


/**
 * The most that `tar-data.json.gz` of `compressed` bytes may inflate to.
 * tar-split metadata compresses 10:1 to 40:1 (base64 headers, mostly zeros);
 * past the first 64 MiB, 100:1 is a gzip bomb (it would take minutes of
 * decoding), and 1 GiB is more than a layer of a million files needs.
 */
export const inflatedMetadataLimit = (compressed: number): number =>
  Math.min(Math.max(64 << 20, compressed * 100), 1 << 30)

/** Hashes the tar stream that `tarDataPath` describes over the files of `root`. */
export const assembleLayer = async (options: AssembleOptions): Promise<Assembled> => {
  const { engine, lane, root } = options
  const sha = createHash("sha256")
  const splitter = new JsonValueSplitter()
  const seen = new Set<string>()
  const laneFiles = new Map<number, string>()
  let size = 0
  let tarBytes = 0
  let unreported = 0
  let nextLaneFile = 0

  const progress = (bytes: number) => {
    tarBytes += bytes
    unreported += bytes
    if (unreported >= PROGRESS_EVERY && options.onProgress !== undefined) {
      options.onProgress(unreported)
      unreported = 0
    }
  }

  /** A CRC mismatch the lane found earlier in the stream wins over any later failure. */
  const laneFailure = (): AssembleFailure | undefined => {
    if (lane === undefined) return undefined
    const file = lane.drain()
    if (file < 0) return undefined
    return crcMismatch(laneFiles.get(file) ?? "?")
  }

  const readFile = (entry: TarSplitEntry, handle: FileHandle) => {
    const name = entryDisplayName(entry)
    const viaLane = lane !== undefined && handle.size >= LANE_MIN_FILE && (options.offloadNow?.() ?? true)
    if (viaLane) {
      const file = nextLaneFile++
      laneFiles.set(file, name)
      for (;;) {
        const slot = lane.nextSlot()
        const n = readSome(handle, slot, LANE_SLOT_BYTES, name)
        if (n === 0) {
          lane.publish(file, 0, entry.payload)
          return
        }
        sha.update(slot.subarray(0, n))
        options.onBytes?.(slot.subarray(0, n))
        progress(n)
        lane.publish(file, n, "more")
      }
    }
    let crc = 0n
    const buffer = engine.buffer
    let read = 0
    for (;;) {
      const n = readSome(handle, buffer, engine.capacity, name)
      if (n === 0) break
      sha.update(buffer.subarray(0, n))
      options.onBytes?.(buffer.subarray(0, n))
      crc = engine.update(crc, n)
      progress(n)
      read += n
      // A short read that reaches the size fstat gave is the end: skip the read that would return 0.
      if (n < engine.capacity && read === handle.size) break
    }
    if (!equalBytes(crc64Bytes(crc), entry.payload)) throw crcMismatch(name)
  }

  const handleEntry = (entry: TarSplitEntry) => {
    size += entry.size
    if (entry.type === EntryType.Segment) {
      if (entry.payload !== null) {
        sha.update(entry.payload)
        options.onBytes?.(entry.payload)
        progress(entry.payload.length)
      }
      return
    }
    if (entry.type !== EntryType.File) return
    const nameBytes = entryNameBytes(entry)
    const key = cleanKey(nameBytes)
    if (seen.has(key)) throw new AssembleFailure("BadEntry", "duplicates of file paths not supported: " + entryDisplayName(entry))
    seen.add(key)
    if (entry.size === 0) return
    if (lane !== undefined && lane.peekMismatch() >= 0) throw laneFailure()!
    let handle: FileHandle
    try {
      handle = root.open(nameBytes)
    } catch (error) {
      throw pathFailure(error)
    }
    try {
      if (options.metadataOnly !== true) readFile(entry, handle)
    } finally {
      handle.close()
    }
  }

  try {
    // A FIFO or device in its place must neither block nor stream forever.
    const metadata = openRegularFileSync(options.tarDataPath)
    const inflatedLimit = inflatedMetadataLimit(metadata.size)
    let inflated = 0
    // Large chunks: each one is a hop to the thread pool and back.
    const gunzip = createGunzip({ chunkSize: 256 * 1024 })
    // pipeline (unlike pipe) carries a read error of the file into the gunzip stream we iterate.
    pipeline(createReadStream("", { fd: metadata.fd }), gunzip, (error) => {
      if (error) gunzip.destroy(error)
    })
    const text = new TextDecoder("utf-8")
    try {
      for await (const chunk of gunzip) {
        inflated += (chunk as Uint8Array).length
        if (inflated > inflatedLimit) {
          throw new AssembleFailure(
            "Unreadable",
            `${options.tarDataPath}: inflates past ${inflatedLimit} bytes from ${metadata.size} (a gzip bomb, not tar-split metadata)`,
          )
        }
        const parsed: Array<unknown> = []
        const values = splitter.pushParsed(text.decode(chunk as Uint8Array, { stream: true }), parsed)
        for (let i = 0; i < values.length; i++) handleEntry(decodeEntryText(values[i]!, parsed[i]))
      }
    } catch (error) {
      gunzip.destroy()
      throw error
    }
    for (const value of splitter.push(text.decode())) handleEntry(decodeEntryText(value))
    for (const value of splitter.finish()) handleEntry(decodeEntryText(value))
  } catch (error) {
    throw laneFailure() ?? toFailure(error, options.tarDataPath)
  }
  const late = laneFailure()
  if (late !== undefined) throw late
  if (unreported > 0 && options.onProgress !== undefined) options.onProgress(unreported)
  return { sha256: sha.digest("hex"), size, tarBytes }
}

const readSome = (handle: FileHandle, into: Uint8Array, length: number, name: string): number => {
  try {
    return handle.read(into, 0, length)
  } catch (error) {
    throw new AssembleFailure("ReadError", `cannot read ${name}: ${errorMessage(error)}`)
  }
}

const crcMismatch = (name: string) =>
  new AssembleFailure("CrcMismatch", `file integrity checksum failed for ${JSON.stringify(name)}`)


/** Go's `filepath.Clean` of the name, as a one-to-one string key for duplicate detection. */
const cleanKey = (name: Uint8Array): string => {
  if (isCleanRelative(name)) return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString("latin1")
  const rooted = name[0] === 0x2f
  const parts: Array<string> = []
  for (const part of latin1(name).split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop()
      else if (!rooted) parts.push("..")
      continue
    }
    parts.push(part)
  }
  const joined = parts.join("/")
  return rooted ? "/" + joined : joined === "" ? "." : joined
}

/** Already what `filepath.Clean` gives: not rooted, no empty, `.` or `..` component (most names). */
const isCleanRelative = (name: Uint8Array): boolean => {
  const length = name.length
  if (length === 0) return false
  let start = 0
  for (let i = 0; i <= length; i++) {
    if (i < length && name[i] !== 0x2f) continue
    const part = i - start
    if (part === 0) return false
    if (name[start] === 0x2e && (part === 1 || (part === 2 && name[start + 1] === 0x2e))) return false
    start = i + 1
  }
  return true
}

const pathFailure = (error: unknown): AssembleFailure => {
  if (error instanceof LayerPathError) {
    const reason = error.problem === "Escapes"
      ? "UnsafePath"
      : error.problem === "Missing"
      ? "MissingFile"
      : error.problem === "NotRegular"
      ? "NotRegularFile"
      : "ReadError"
    return new AssembleFailure(reason, error.message)
  }
  return toFailure(error, "")
}

const toFailure = (error: unknown, tarDataPath: string): AssembleFailure => {
  if (error instanceof AssembleFailure) return error
  if (error instanceof BadEntry) return new AssembleFailure("BadEntry", error.message)
  const message = errorMessage(error)
  if (errorCode(error) === "ENOENT") return new AssembleFailure("Unreadable", `${tarDataPath}: no such file or directory`)
  return new AssembleFailure("Unreadable", `${tarDataPath}: ${message}`)
}

