/**
 * Writes a GNU-format tar stream member by member into a hash, and records
 * the tar-split metadata of that stream exactly as tar-split's disassembler
 * and JSON packer (v0.9.11) record a pulled layer: each member's padding of
 * the previous member and its header in one segment, then a file entry, and
 * after the last member one segment with the end blocks and record padding.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto"
import { crc64Bytes } from "../../src/crc/Crc64.ts"
import type { Crc64Engine } from "../../src/crc/Crc64Engine.ts"
import { encodeEntry, EntryType } from "../../src/tar/TarSplit.ts"

const BLOCK = 512
const RECORD = 10240

export interface MemberHeader {
  readonly name: string
  readonly mode: number
  readonly type: "file" | "directory" | "symlink" | "hardlink"
  readonly size: number
  readonly mtime: number
  readonly linkName?: string
  /** A name longer than 100 bytes goes in a GNU `././@LongLink` member (the default, as GNU tar) or a PAX header. */
  readonly longName?: "gnu" | "pax"
}

const TYPEFLAG = { file: "0", hardlink: "1", symlink: "2", directory: "5", longLink: "L", pax: "x" } as const
const utf8 = new TextEncoder()

const octal = (value: number, width: number): string => value.toString(8).padStart(width - 1, "0") + "\0"

/** A 512-byte GNU tar header (`ustar  \0` magic, as GNU tar writes). */
export const tarHeader = (member: Omit<MemberHeader, "type"> & { readonly type: keyof typeof TYPEFLAG }): Uint8Array => {
  const header = new Uint8Array(BLOCK)
  const put = (offset: number, text: string) => header.set(utf8.encode(text), offset)
  const name = utf8.encode(member.name)
  // A longer name is carried by the extension member before this header (see `nameExtension`).
  header.set(name.subarray(0, 100), 0)
  put(100, octal(member.mode & 0o7777, 8))
  put(108, octal(0, 8))
  put(116, octal(0, 8))
  put(124, octal(member.size, 12))
  put(136, octal(member.mtime, 12))
  put(148, "        ")
  put(156, TYPEFLAG[member.type])
  if (member.linkName !== undefined) put(157, member.linkName)
  put(257, "ustar  \0")
  put(265, "root")
  put(297, "root")
  let sum = 0
  for (const byte of header) sum += byte
  put(148, sum.toString(8).padStart(6, "0") + "\0 ")
  return header
}

const padded = (data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK)
  out.set(data)
  return out
}

/** A PAX record `"<len> path=<name>\n"`, whose decimal length counts itself. */
const paxRecord = (key: string, value: string): Uint8Array => {
  const body = utf8.encode(` ${key}=${value}\n`).length
  let length = body + 1
  while (String(length).length + body > length) length++
  return utf8.encode(`${length} ${key}=${value}\n`)
}

/**
 * The blocks that carry a name longer than 100 bytes before the member's own
 * header (empty for a short name): GNU tar's `././@LongLink` member, or a PAX
 * extended header. tar-split keeps them in the member's header segment.
 */
export const nameExtension = (member: MemberHeader): Uint8Array => {
  if (utf8.encode(member.name).length <= 100) return new Uint8Array(0)
  const data = member.longName === "pax"
    ? paxRecord("path", member.name)
    : new Uint8Array([...utf8.encode(member.name), 0])
  const name = member.longName === "pax" ? `PaxHeaders.0/${member.name.slice(-60)}` : "././@LongLink"
  const header = tarHeader({ name, mode: 0o644, type: member.longName === "pax" ? "pax" : "longLink", size: data.length, mtime: member.mtime })
  const out = new Uint8Array(BLOCK + Math.ceil(data.length / BLOCK) * BLOCK)
  out.set(header)
  out.set(padded(data), BLOCK)
  return out
}

/** Builds one layer's tar stream in a hash while recording its tar-split metadata. */
export class TarRecorder {
  readonly sha: Hash = createHash("sha256")
  /** JSON lines of the tar-split metadata. */
  readonly lines: Array<string> = []
  /** Sum of the members' sizes (Docker's layer size). */
  size = 0
  tarBytes = 0
  private pendingPadding = 0

  constructor(private readonly engine: Crc64Engine) {}

  /** Adds a member; `content` yields the file's bytes for regular files. */
  add(member: MemberHeader, content?: (sink: (chunk: Uint8Array) => void) => void): void {
    const extension = nameExtension(member)
    const segment = new Uint8Array(this.pendingPadding + extension.length + BLOCK)
    segment.set(extension, this.pendingPadding)
    segment.set(tarHeader(member), this.pendingPadding + extension.length)
    this.emitSegment(segment)
    let crc = 0n
    let written = 0
    if (member.size > 0 && content !== undefined) {
      content((chunk) => {
        this.sha.update(chunk)
        crc = this.engine.updateBytes(crc, chunk)
        written += chunk.length
      })
      if (written !== member.size) throw new Error(`${member.name}: wrote ${written} bytes, header says ${member.size}`)
    }
    this.tarBytes += written
    this.size += member.size
    this.record({
      type: EntryType.File,
      name: utf8.encode(member.name),
      size: member.size,
      payload: member.size > 0 ? crc64Bytes(crc) : null,
    })
    this.pendingPadding = (BLOCK - (member.size % BLOCK)) % BLOCK
  }

  /**
   * Ends the stream: padding and two zero blocks, then zeros up to a full
   * 10240-byte record (as GNU tar). tar-split records these as two segments:
   * what its tar reader consumed at the end, then the unread remainder.
   */
  finish(): void {
    this.emitSegment(new Uint8Array(this.pendingPadding + 2 * BLOCK))
    this.emitSegment(new Uint8Array((RECORD - (this.tarBytes % RECORD)) % RECORD))
    this.pendingPadding = 0
  }

  private emitSegment(bytes: Uint8Array): void {
    this.sha.update(bytes)
    this.tarBytes += bytes.length
    this.record({ type: EntryType.Segment, payload: bytes })
  }

  private record(entry: Parameters<typeof encodeEntry>[0]): void {
    this.lines.push(encodeEntry(entry, this.lines.length))
  }
}
