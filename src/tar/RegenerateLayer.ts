/**
 * The fallback path: regenerate a layer's tar from its files as Docker 1.10
 * did, hash it, and write its tar-split metadata (gzip) to `tarDataOut`.
 * Runs in a layer worker; memory is bounded (1 MiB copy buffer, metadata
 * compressed and written every 1 MiB as gzip members of one file).
 *
 * @module
 */
import * as fs from "node:fs"
import process from "node:process"
import { gzipSync } from "node:zlib"
import type { Crc64Engine } from "../crc/Crc64Engine.ts"
import { GoTarWriter } from "./GoTarWriter.ts"
import { writeChanges, writeTree } from "./LayerArchive.ts"
import { TarSplitRecorder } from "./TarSplitRecorder.ts"

/** How a driver's layer directory relates to the layer's tar. */
export type LayerFiles =
  /** The directory holds only this layer's changes, aufs whiteouts and metadata included (aufs). */
  | "aufs-diff"
  /** The directory holds the layer's whole root filesystem (overlay, vfs, btrfs, zfs, devicemapper). */
  | "snapshot"

export interface RegenerateRequest {
  readonly root: string
  /** The parent's root, for a child of a snapshot driver. */
  readonly parentRoot: string | undefined
  readonly layerFiles: LayerFiles
  /**
   * Where the gzip of the tar-split metadata goes (created with mode 0666 less the umask, as Docker's
   * `os.Create`); none when only the tar is wanted (the overlay2 target unpacks it).
   */
  readonly tarDataOut: string | undefined
  /** The whiteouts' mtime; Docker used the current time (the default). Fixed only to compare two regenerations. */
  readonly whiteoutTimeNs?: bigint | undefined
}

/** Receives every byte of the regenerated tar, in order (`export` writes them); the array may be reused after the call. */
export type TarBytesSink = (bytes: Uint8Array) => void

export interface Regenerated {
  readonly sha256: string
  readonly size: number
  readonly tarBytes: number
}

const FLUSH_BYTES = 1 << 20
const utf8 = new TextEncoder()

/** Regenerates, hashes and records one layer. */
export const regenerateLayer = (
  request: RegenerateRequest,
  engine: Crc64Engine,
  onProgress: (bytes: number) => void,
  onBytes?: TarBytesSink,
): Regenerated => {
  const fd = request.tarDataOut === undefined ? undefined : fs.openSync(request.tarDataOut, "w", 0o666)
  try {
    let lines: Array<string> = []
    let pending = 0
    let reported = 0
    const flush = () => {
      if (lines.length === 0) return
      if (fd !== undefined) fs.writeSync(fd, gzipSync(lines.join("")))
      lines = []
      pending = 0
    }
    const recorder = new TarSplitRecorder(engine, (line) => {
      lines.push(line)
      pending += line.length
      if (pending >= FLUSH_BYTES) flush()
      if (recorder.bytes - reported >= 16 << 20) {
        onProgress(recorder.bytes - reported)
        reported = recorder.bytes
      }
    })
    const sink = onBytes === undefined ? recorder : {
      raw: (bytes: Uint8Array) => {
        recorder.raw(bytes)
        onBytes(bytes)
      },
      beginEntry: (name: Uint8Array, size: number) => recorder.beginEntry(name, size),
      content: (bytes: Uint8Array) => {
        recorder.content(bytes)
        onBytes(bytes)
      },
    }
    const tar = new GoTarWriter(sink, process.pid)
    const root = utf8.encode(request.root)
    if (request.layerFiles === "snapshot" && request.parentRoot !== undefined) {
      // Docker stamped each whiteout with time.Now().
      writeChanges(tar, utf8.encode(request.parentRoot), root, () => request.whiteoutTimeNs ?? BigInt(Date.now()) * 1_000_000n)
    } else {
      writeTree(tar, root, { hideAufsMetadata: request.layerFiles === "aufs-diff" })
    }
    const sha256 = recorder.finish()
    flush()
    onProgress(recorder.bytes - reported)
    return { sha256, size: recorder.size, tarBytes: recorder.bytes }
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}
