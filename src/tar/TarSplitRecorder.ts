/**
 * Hashes a tar stream as it is written and records its tar-split metadata
 * exactly as tar-split v0.9.11's disassembler + JSON packer would record that
 * stream: everything the tar reader consumes between two entries (padding of
 * the previous entry, PAX headers and their data, the header) is one segment,
 * each entry is a file entry (name as the reader sees it, size, CRC-64 of the
 * content), the end blocks are a segment, and the unread remainder (empty for
 * our streams) a last one.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto"
import { concatBytes } from "../Bytes.ts"
import { crc64Bytes } from "../crc/Crc64.ts"
import type { Crc64Engine } from "../crc/Crc64Engine.ts"
import { encodeEntry, EntryType } from "./TarSplit.ts"

/** Where the recorded JSON lines go (a gzip stream, in practice). */
export type LineSink = (line: string) => void

export class TarSplitRecorder {
  private readonly sha: Hash = createHash("sha256")
  private pending: Array<Uint8Array> = []
  private position = 0
  private entry: { name: Uint8Array; size: number; crc: bigint; seen: number } | undefined
  /** Sum of the entries' sizes (Docker's layer size). */
  size = 0
  /** Bytes in the tar stream. */
  bytes = 0

  constructor(private readonly engine: Crc64Engine, private readonly sink: LineSink) {}

  /** Structural bytes: headers, PAX data, padding, end blocks. */
  raw(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.endEntry()
    this.sha.update(bytes)
    this.bytes += bytes.length
    this.pending.push(bytes)
  }

  /** A new entry, as the tar reader names it, after its headers went through `raw`. */
  beginEntry(name: Uint8Array, size: number): void {
    this.endEntry()
    this.flushSegment(false)
    this.entry = { name, size, crc: 0n, seen: 0 }
  }

  /** Content of the current entry. */
  content(bytes: Uint8Array): void {
    const entry = this.entry
    if (entry === undefined) throw new Error("tar content outside an entry")
    this.sha.update(bytes)
    this.bytes += bytes.length
    entry.crc = this.engine.updateBytes(entry.crc, bytes)
    entry.seen += bytes.length
  }

  /** Ends the stream; returns the hex SHA-256 of the tar. */
  finish(): string {
    this.endEntry()
    this.flushSegment(false)
    this.flushSegment(true) // tar-split's unread remainder: an empty, non-null payload
    return this.sha.digest("hex")
  }

  private endEntry(): void {
    const entry = this.entry
    if (entry === undefined) return
    this.entry = undefined
    this.size += entry.size
    this.sink(encodeEntry({
      type: EntryType.File,
      name: entry.name,
      size: entry.size,
      payload: entry.size > 0 ? crc64Bytes(entry.crc) : null,
    }, this.position++))
  }

  private flushSegment(evenIfEmpty: boolean): void {
    if (this.pending.length === 0 && !evenIfEmpty) return
    const payload = concatBytes(this.pending)
    this.pending = []
    this.sink(encodeEntry({ type: EntryType.Segment, payload }, this.position++))
  }
}
