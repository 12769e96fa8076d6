/**
 * A push parser of a layer's tar stream, reading headers as Go's
 * `archive/tar` reader does (the reader Docker's `ApplyDiff` uses): ustar,
 * GNU and PAX headers, base-256 numbers, GNU long names, PAX `path`,
 * `linkpath`, `size`, `uid`, `gid`, `mtime`, `atime` and `SCHILY.xattr.*`,
 * the ustar prefix (and, as Go does, the prefix a GNU header carries when its
 * time fields do not parse), header-only types reading no data. Bytes come in
 * any pieces; each entry is handed over as a header, its data, its end.
 *
 * @module
 */

/** The stream is not a tar Go's reader accepts. */
export class TarFormatError extends Error {
  override readonly name = "TarFormatError"
}

/** One entry's header, as Go's `tar.Header` after its meta headers are merged. */
export interface TarHeader {
  readonly name: Uint8Array
  readonly linkname: Uint8Array
  /** The type flag as a character (`"0"`, `"5"`, ...); `"\0"` is already `"0"` or `"5"`. */
  readonly typeflag: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeNs: bigint
  /** Only when the header has one (PAX `atime`, or a GNU header's field). */
  readonly atimeNs: bigint | undefined
  readonly devmajor: number
  readonly devminor: number
  /** `SCHILY.xattr.<name>` PAX records: name and value bytes. */
  readonly xattrs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>
}

/** What the reader hands over, in order: `entry`, then its data in pieces, then `end`. */
export interface TarEntrySink {
  entry(header: TarHeader): void
  data(bytes: Uint8Array): void
  end(): void
}

const BLOCK = 512
const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"])
const decoder = new TextDecoder()

/** Bytes up to the first NUL (Go's `parseString`). */
const cString = (bytes: Uint8Array): Uint8Array => {
  const nul = bytes.indexOf(0)
  return bytes.slice(0, nul < 0 ? bytes.length : nul)
}

/** Go's `parseNumeric`: base-256 when the top bit is set, else octal trimmed of spaces and NULs. */
const parseNumeric = (field: Uint8Array): bigint => {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    const negative = (field[0]! & 0x40) !== 0
    let value = 0n
    for (const [i, byte] of field.entries()) {
      let b = negative ? byte ^ 0xff : byte
      if (i === 0) b &= 0x7f
      value = (value << 8n) | BigInt(b)
    }
    return negative ? -value - 1n : value
  }
  let text = decoder.decode(field)
  text = text.replace(/^[ \0]+|[ \0]+$/g, "")
  if (text === "") return 0n
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid octal number ${JSON.stringify(text)}`)
  return BigInt(`0o${text}`)
}

/** Go's `parsePAXTime`: seconds with an optional fraction, to nanoseconds. */
const parsePaxTime = (text: string): bigint => {
  const match = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text)
  if (match === null) throw new TarFormatError(`invalid PAX time ${JSON.stringify(text)}`)
  const seconds = BigInt(match[2]!)
  const fraction = BigInt(((match[3] ?? "") + "000000000").slice(0, 9))
  const ns = seconds * 1_000_000_000n + fraction
  return match[1] === "-" ? -ns : ns
}

/** PAX records `"<len> <key>=<value>\n"`, keys as text, values as bytes. */
const parsePaxRecords = (data: Uint8Array): Array<[string, Uint8Array]> => {
  const records: Array<[string, Uint8Array]> = []
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space < 0) throw new TarFormatError("invalid PAX record")
    const length = Number(decoder.decode(data.subarray(offset, space)))
    if (!Number.isInteger(length) || length <= space - offset || offset + length > data.length) {
      throw new TarFormatError("invalid PAX record length")
    }
    const record = data.subarray(space + 1, offset + length)
    if (record[record.length - 1] !== 0x0a) throw new TarFormatError("PAX record without newline")
    const equals = record.indexOf(0x3d)
    if (equals < 0) throw new TarFormatError("PAX record without =")
    records.push([decoder.decode(record.subarray(0, equals)), record.slice(equals + 1, record.length - 1)])
    offset += length
  }
  return records
}

const isZero = (block: Uint8Array) => block.every((b) => b === 0)

const checksumMatches = (block: Uint8Array): boolean => {
  const stored = parseNumeric(block.subarray(148, 156))
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return stored === BigInt(unsigned) || stored === BigInt(signed)
}

const isAscii = (bytes: Uint8Array) => bytes.every((b) => b < 0x80)

/** Meta headers seen before the entry they describe. */
interface Pending {
  longName?: Uint8Array
  longLink?: Uint8Array
  pax: Array<[string, Uint8Array]>
}

export class TarStreamReader {
  private readonly header = new Uint8Array(BLOCK)
  private headerFill = 0
  /** Data bytes left of the current entry (handed to the sink, or collected for a meta header). */
  private dataLeft = 0
  private padLeft = 0
  private meta: { kind: "L" | "K" | "x" | "g"; bytes: Array<Uint8Array>; header: Uint8Array } | undefined
  private pending: Pending = { pax: [] }
  private inEntry = false
  private zeroBlocks = 0
  private finished = false

  constructor(private readonly sink: TarEntrySink) {}

  /** Whether the end-of-archive blocks were read (anything after them is ignored, as Go does). */
  get done(): boolean {
    return this.finished
  }

  push(bytes: Uint8Array): void {
    let offset = 0
    while (offset < bytes.length && !this.finished) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, bytes.length - offset)
        const piece = bytes.subarray(offset, offset + n)
        if (this.meta !== undefined) this.meta.bytes.push(piece.slice())
        else this.sink.data(piece)
        this.dataLeft -= n
        offset += n
        if (this.dataLeft === 0) this.afterData()
        continue
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, bytes.length - offset)
        this.padLeft -= n
        offset += n
        continue
      }
      const n = Math.min(BLOCK - this.headerFill, bytes.length - offset)
      this.header.set(bytes.subarray(offset, offset + n), this.headerFill)
      this.headerFill += n
      offset += n
      if (this.headerFill === BLOCK) {
        this.headerFill = 0
        this.onHeader(this.header)
      }
    }
  }

  /** The stream ended: it must have ended cleanly (Go accepts a stream ending at a header boundary). */
  close(): void {
    if (this.finished) return
    if (this.dataLeft > 0 || this.headerFill > 0 || this.meta !== undefined || this.padLeft > 0) {
      throw new TarFormatError("unexpected end of the tar stream")
    }
    if (this.zeroBlocks === 1) throw new TarFormatError("unexpected end of the tar stream after one zero block")
    this.finished = true
  }

  private afterData(): void {
    if (this.meta !== undefined) {
      const meta = this.meta
      this.meta = undefined
      const total = meta.bytes.reduce((sum, piece) => sum + piece.length, 0)
      const data = new Uint8Array(total)
      let at = 0
      for (const piece of meta.bytes) {
        data.set(piece, at)
        at += piece.length
      }
      if (meta.kind === "L") this.pending.longName = cString(data)
      else if (meta.kind === "K") this.pending.longLink = cString(data)
      else if (meta.kind === "x") this.pending.pax.push(...parsePaxRecords(data))
      else this.emitGlobal(meta.header)
      return
    }
    if (this.inEntry) {
      this.inEntry = false
      this.sink.end()
    }
  }

  private onHeader(block: Uint8Array): void {
    if (isZero(block)) {
      this.zeroBlocks++
      if (this.zeroBlocks === 2) this.finished = true
      return
    }
    if (this.zeroBlocks === 1) throw new TarFormatError("invalid tar header after a zero block")
    if (!checksumMatches(block)) throw new TarFormatError("tar header checksum mismatch")
    const typeflag = String.fromCharCode(block[156]!)
    const size = Number(parseNumeric(block.subarray(124, 136)))
    if (size < 0) throw new TarFormatError("negative size in a tar header")
    if (typeflag === "L" || typeflag === "K" || typeflag === "x" || typeflag === "g") {
      if (size > 64 << 20) throw new TarFormatError(`meta header of ${size} bytes`)
      this.meta = { kind: typeflag, bytes: [], header: block.slice() }
      this.dataLeft = size
      this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK
      if (size === 0) this.afterData()
      return
    }
    this.emitEntry(block, typeflag)
  }

  private emitGlobal(block: Uint8Array): void {
    // Go returns it as an entry of its own (TypeXGlobalHeader); Docker skips it.
    this.sink.entry(this.baseHeader(block, "g", { pax: [] }))
    this.sink.end()
  }

  private baseHeader(block: Uint8Array, typeflag: string, pending: Pending): TarHeader {
    const magic = decoder.decode(block.subarray(257, 263))
    const version = decoder.decode(block.subarray(263, 265))
    let name = cString(block.subarray(0, 100))
    let atimeNs: bigint | undefined
    let prefix: Uint8Array = new Uint8Array(0)
    if (magic === "ustar\0") {
      prefix = cString(block.subarray(345, 500))
    } else if (magic === "ustar " && version === " \0") {
      // GNU: the prefix's bytes hold access and change times; Go reads them as a prefix when they do not parse.
      try {
        const atime = block[345] !== 0 ? parseNumeric(block.subarray(345, 357)) : undefined
        if (block[357] !== 0) parseNumeric(block.subarray(357, 369))
        atimeNs = atime === undefined ? undefined : atime * 1_000_000_000n
      } catch {
        atimeNs = undefined
        const candidate = cString(block.subarray(345, 500))
        if (isAscii(candidate)) prefix = candidate
      }
    }
    if (prefix.length > 0) {
      const joined = new Uint8Array(prefix.length + 1 + name.length)
      joined.set(prefix)
      joined[prefix.length] = 0x2f
      joined.set(name, prefix.length + 1)
      name = joined
    }
    let linkname = cString(block.subarray(157, 257))
    let size = Number(parseNumeric(block.subarray(124, 136)))
    let uid = Number(parseNumeric(block.subarray(108, 116)))
    let gid = Number(parseNumeric(block.subarray(116, 124)))
    let mtimeNs = parseNumeric(block.subarray(136, 148)) * 1_000_000_000n
    if (pending.longName !== undefined) name = pending.longName
    if (pending.longLink !== undefined) linkname = pending.longLink
    const xattrs: Array<readonly [Uint8Array, Uint8Array]> = []
    const integer = (key: string, value: Uint8Array) => {
      const text = decoder.decode(value)
      if (!/^-?[0-9]+$/.test(text)) throw new TarFormatError(`invalid PAX ${key} ${JSON.stringify(text)}`)
      return Number(text)
    }
    for (const [key, value] of pending.pax) {
      // Go's mergePAX keeps the ustar value for an empty record, and so drops an empty xattr (Docker 20.10 read Xattrs).
      if (value.length === 0) continue
      if (key === "path") name = value
      else if (key === "linkpath") linkname = value
      else if (key === "size") size = integer(key, value)
      else if (key === "uid") uid = integer(key, value)
      else if (key === "gid") gid = integer(key, value)
      else if (key === "mtime") mtimeNs = parsePaxTime(decoder.decode(value))
      else if (key === "atime") atimeNs = parsePaxTime(decoder.decode(value))
      else if (key.startsWith("SCHILY.xattr.")) {
        xattrs.push([new TextEncoder().encode(key.slice("SCHILY.xattr.".length)), value])
      }
    }
    // Go's map of records keeps the last value of a repeated xattr.
    const unique = new Map<string, readonly [Uint8Array, Uint8Array]>()
    for (const pair of xattrs) unique.set(decoder.decode(pair[0]), pair)
    let flag = typeflag
    if (flag === "\0") flag = name.length > 0 && name[name.length - 1] === 0x2f ? "5" : "0"
    return {
      name,
      linkname,
      typeflag: flag,
      mode: Number(parseNumeric(block.subarray(100, 108))),
      uid,
      gid,
      size,
      mtimeNs,
      atimeNs,
      devmajor: Number(parseNumeric(block.subarray(329, 337))),
      devminor: Number(parseNumeric(block.subarray(337, 345))),
      xattrs: [...unique.values()],
    }
  }

  private emitEntry(block: Uint8Array, typeflag: string): void {
    const header = this.baseHeader(block, typeflag, this.pending)
    this.pending = { pax: [] }
    const dataBytes = HEADER_ONLY.has(header.typeflag) ? 0 : header.size
    if (dataBytes < 0) throw new TarFormatError("negative size in a tar header")
    this.inEntry = true
    this.sink.entry(header)
    this.dataLeft = dataBytes
    this.padLeft = (BLOCK - (dataBytes % BLOCK)) % BLOCK
    if (dataBytes === 0) this.afterData()
  }
}
