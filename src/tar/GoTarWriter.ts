/**
 * A tar writer that writes headers byte for byte as Go 1.5's `archive/tar`
 * (the writer Docker 1.10 regenerated layers with):
 *
 * - ustar headers (`ustar\0` + `00`); a number that does not fit octal is
 *   written base-256, and from then on every header of the stream carries the
 *   GNU magic `ustar  \0`;
 * - a name over 100 bytes is split into ustar prefix + name when it can be;
 *   otherwise, and for non-ASCII names, long or non-ASCII link targets and
 *   xattrs, a PAX header named `<dir>/PaxHeaders.<pid>/<base>` comes first;
 * - whole-second mtimes (0 outside 1970..2242), no atime/ctime, padding to
 *   512 bytes, two zero blocks at the end and no record padding.
 *
 * Output goes to a `TarSink` (a `TarSplitRecorder` hashes it and records tar-split).
 *
 * @module
 */
import { concatBytes } from "../Bytes.ts"

/** Where the writer's bytes go (a `TarSplitRecorder`): structure, entry boundaries (as a tar reader names them) and content. */
export interface TarSink {
  raw(bytes: Uint8Array): void
  beginEntry(name: Uint8Array, size: number): void
  content(bytes: Uint8Array): void
}

const BLOCK = 512
const NAME_SIZE = 100
const PREFIX_SIZE = 155
const ZERO_BLOCK = new Uint8Array(BLOCK)
const MAX_MTIME = 2 ** 33 - 1

/** Type flags Docker's archiver produces. */
export const TypeFlag = {
  Regular: 0x30, // '0'
  Link: 0x31, // '1'
  Symlink: 0x32, // '2'
  Char: 0x33, // '3'
  Block: 0x34, // '4'
  Directory: 0x35, // '5'
  Fifo: 0x36, // '6'
  PaxHeader: 0x78, // 'x'
  /** What Go's FileInfoHeader leaves for a socket, and Docker for a whiteout: NUL. */
  None: 0,
} as const

/** One member's header, with Go's field meanings (names and link targets are bytes). */
export interface TarHeader {
  readonly name: Uint8Array
  /** Permission bits and the c_IS* file-type bits Go 1.5's FileInfoHeader sets. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  /** Modification time in nanoseconds since the epoch. */
  readonly mtimeNs: bigint
  readonly typeflag: number
  readonly linkname: Uint8Array
  readonly devmajor: number
  readonly devminor: number
  /** PAX records `SCHILY.xattr.<key>`, in insertion order. */
  readonly xattrs: ReadonlyArray<readonly [string, Uint8Array]>
}

const utf8 = new TextEncoder()
const ascii = (text: string): Uint8Array => utf8.encode(text)
const isAscii = (bytes: Uint8Array): boolean => bytes.every((b) => b < 0x80)
/** Go's `toASCII`: drops every rune (so every byte) outside ASCII. */
const toAscii = (bytes: Uint8Array): Uint8Array => bytes.filter((b) => b < 0x80)

const concat = concatBytes

/** Seconds Go writes for a time: `Unix()` when 1970 <= t <= 1970 + 2^33 - 1 s, else 0. */
export const goModTime = (ns: bigint): number => {
  if (ns < 0n || ns > BigInt(MAX_MTIME) * 1_000_000_000n) return 0
  return Number(ns / 1_000_000_000n)
}

/** Go's `path.Join(dir, "PaxHeaders.<pid>", file)` for `path.Split(name)`. */
const paxHeaderName = (name: Uint8Array, pid: number): Uint8Array => {
  const slash = name.lastIndexOf(0x2f)
  const dir = name.subarray(0, slash + 1)
  const file = name.subarray(slash + 1)
  const parts: Array<Uint8Array> = [dir, ascii(`PaxHeaders.${pid}`), file].filter((part) => part.length > 0)
  return cleanPath(concat(parts.flatMap((part, i) => (i === 0 ? [part] : [ascii("/"), part]))))
}

/** Go's `path.Clean` on bytes. */
const cleanPath = (path: Uint8Array): Uint8Array => {
  const rooted = path[0] === 0x2f
  const out: Array<Uint8Array> = []
  let start = 0
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x2f) continue
    const part = path.subarray(start, i)
    start = i + 1
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
      if (out.length > 0 && !(out[out.length - 1]!.length === 2 && out[out.length - 1]![0] === 0x2e)) out.pop()
      else if (!rooted) out.push(part)
      continue
    }
    out.push(part)
  }
  const joined = concat(out.flatMap((part, i) => (i === 0 ? [part] : [ascii("/"), part])))
  if (rooted) return concat([ascii("/"), joined])
  return joined.length === 0 ? ascii(".") : joined
}

/** One PAX record: `<length> <key>=<value>\n`, the length counting itself (Go's `paxHeader`). */
const paxRecord = (key: Uint8Array, value: Uint8Array): Uint8Array => {
  const message = key.length + 1 + value.length
  let size = message + 2
  size += String(size).length
  const length = (n: number) => String(n).length + 1 + message + 1
  if (length(size) !== size) size = length(size)
  return concat([ascii(`${size} `), key, ascii("="), value, ascii("\n")])
}

/** Writes a tar stream as Go 1.5 did, into a recorder. */
export class GoTarWriter {
  /** Set once a number needed base-256: every later header gets the GNU magic. */
  private usedBinary = false
  private remaining = 0
  private padding = 0

  constructor(private readonly out: TarSink, private readonly pid: number) {}

  /** Writes the header(s) of a member; its content follows through `write`. */
  writeHeader(header: TarHeader): void {
    this.flush()
    const pax: Array<readonly [Uint8Array, Uint8Array]> = []
    const block = new Uint8Array(BLOCK)
    const mtime = goModTime(header.mtimeNs)

    const nameNeedsPax = this.field(block, 0, NAME_SIZE, header.name, true)
    if (nameNeedsPax) pax.push([ascii("path"), header.name])
    this.octal(block, 100, 8, header.mode)
    this.numeric(block, 108, 8, header.uid)
    this.numeric(block, 116, 8, header.gid)
    this.numeric(block, 124, 12, header.size)
    this.numeric(block, 136, 12, mtime)
    block[156] = header.typeflag
    if (this.field(block, 157, 100, header.linkname, true)) pax.push([ascii("linkpath"), header.linkname])
    block.set(ascii("ustar\u000000"), 257)
    this.numeric(block, 329, 8, header.devmajor)
    this.numeric(block, 337, 8, header.devminor)
    if (this.usedBinary) block.set(ascii("ustar  \u0000"), 257)

    // Only the name is too long: a ustar prefix may do instead of a PAX header.
    if (pax.length === 1 && nameNeedsPax && header.name.length > NAME_SIZE && isAscii(header.name)) {
      const split = splitUstarName(header.name)
      if (split !== undefined) {
        pax.pop()
        block.fill(0, 0, NAME_SIZE)
        block.set(split.name, 0)
        block.set(split.prefix, 345)
        if (split.prefix.length > 0 && !this.usedBinary) block.set(ascii("ustar\u000000"), 257)
      }
    }
    writeChecksum(block)
    for (const [key, value] of header.xattrs) pax.push([ascii(`SCHILY.xattr.${key}`), value])

    if (pax.length > 0) this.writePax(header, mtime, pax)
    this.out.raw(block)
    const pathRecord = pax.find(([key]) => key.length === 4 && new TextDecoder().decode(key) === "path")
    const readerName = pathRecord !== undefined ? pathRecord[1] : readerViewOfName(block)
    this.out.beginEntry(readerName, header.size)
    this.remaining = header.size
    this.padding = (BLOCK - (header.size % BLOCK)) % BLOCK
  }

  /** Content of the current member (at most its size). */
  write(bytes: Uint8Array): void {
    if (bytes.length > this.remaining) throw new Error("archive/tar: write too long")
    this.out.content(bytes)
    this.remaining -= bytes.length
  }

  /** Ends the stream: padding and two zero blocks, nothing more. */
  close(): void {
    this.flush()
    this.out.raw(new Uint8Array(2 * BLOCK))
  }

  private flush(): void {
    if (this.remaining > 0) throw new Error(`archive/tar: missed writing ${this.remaining} bytes`)
    if (this.padding > 0) this.out.raw(ZERO_BLOCK.subarray(0, this.padding))
    this.padding = 0
  }

  private writePax(header: TarHeader, mtime: number, records: ReadonlyArray<readonly [Uint8Array, Uint8Array]>) {
    const data = concat(records.map(([key, value]) => paxRecord(key, value)))
    let name = toAscii(paxHeaderName(header.name, this.pid))
    if (name.length > NAME_SIZE) name = name.subarray(0, NAME_SIZE)
    const block = new Uint8Array(BLOCK)
    block.set(name, 0)
    this.octal(block, 100, 8, 0)
    this.numeric(block, 108, 8, 0)
    this.numeric(block, 116, 8, 0)
    this.numeric(block, 124, 12, data.length)
    this.numeric(block, 136, 12, mtime)
    block[156] = TypeFlag.PaxHeader
    block.set(ascii("ustar\u000000"), 257)
    this.numeric(block, 329, 8, 0)
    this.numeric(block, 337, 8, 0)
    if (this.usedBinary) block.set(ascii("ustar  \u0000"), 257)
    writeChecksum(block)
    this.out.raw(block)
    this.out.raw(data)
    const padding = (BLOCK - (data.length % BLOCK)) % BLOCK
    if (padding > 0) this.out.raw(ZERO_BLOCK.subarray(0, padding))
  }

  /** Go's `cString`: true when the value must go to a PAX record instead (the field stays empty). */
  private field(block: Uint8Array, offset: number, size: number, value: Uint8Array, allowPax: boolean): boolean {
    if ((allowPax && value.length > size) || !isAscii(value)) return true
    if (value.length > size) throw new Error("archive/tar: header field too long")
    block.set(value, offset)
    return false
  }

  /** Octal, zero-padded, NUL-terminated. */
  private octal(block: Uint8Array, offset: number, size: number, value: number): void {
    block.set(ascii(value.toString(8).padStart(size - 1, "0")), offset)
  }

  /** Octal when it fits, else base-256 (and the GNU magic from now on). */
  private numeric(block: Uint8Array, offset: number, size: number, value: number): void {
    if (value.toString(8).length < size) return this.octal(block, offset, size, value)
    this.usedBinary = true
    let x = BigInt(value)
    for (let i = offset + size - 1; x > 0n && i >= offset; i--) {
      block[i] = Number(x & 0xffn)
      x >>= 8n
    }
    block[offset] = block[offset]! | 0x80
  }
}

/** Go's `splitUSTARLongName` (GNU tar's heuristic). */
const splitUstarName = (name: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | undefined => {
  let length = name.length
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1
  else if (name[length - 1] === 0x2f) length--
  const i = name.subarray(0, length).lastIndexOf(0x2f)
  const nameLength = name.length - i - 1
  if (i <= 0 || nameLength > NAME_SIZE || nameLength === 0 || i > PREFIX_SIZE) return undefined
  return { prefix: name.subarray(0, i), name: name.subarray(i + 1) }
}

/** The checksum field: six octal digits, NUL, space (unsigned sum with the field as spaces). */
const writeChecksum = (block: Uint8Array): void => {
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  block.set(ascii(sum.toString(8).padStart(6, "0") + "\u0000 "), 148)
}

/** How tar-split's tar reader names an entry from its header: `prefix/name`, each up to its first NUL. */
const readerViewOfName = (block: Uint8Array): Uint8Array => {
  const cString = (start: number, size: number) => {
    const field = block.subarray(start, start + size)
    const nul = field.indexOf(0)
    return nul < 0 ? field : field.subarray(0, nul)
  }
  const name = cString(0, NAME_SIZE)
  const prefix = cString(345, PREFIX_SIZE)
  return prefix.length > 0 ? concat([prefix, ascii("/"), name]) : name
}
