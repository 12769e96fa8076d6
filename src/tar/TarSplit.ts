/**
 * The tar-split codec: the JSON-lines entries that `vbatts/tar-split` (v0.9.11,
 * as vendored by Docker 1.10) stores in `tar-data.json.gz`, decoded and encoded
 * with Go's `encoding/json` semantics.
 *
 * - type 1 (file): `name` or base64 `name_raw`, `size`, `payload` = base64 of
 *   the 8-byte big-endian CRC-64/ISO of the content (null for size 0);
 * - type 2 (segment): `payload` = raw tar bytes (headers, padding, end blocks).
 *
 * Other types are skipped, as tar-split's assembler skips them.
 *
 * @example
 * ```ts
 * const lines = new JsonValueSplitter()
 * for (const text of lines.push('{"type":2,"payload":"AAA=","position":0}\n')) {
 *   decodeEntry(JSON.parse(text))
 * }
 * ```
 * @module
 */
import { Buffer } from "node:buffer"
import { goQuote, isValidUtf8 } from "../go/GoJson.ts"
import { type JsonNode, parseJsonTree } from "../go/GoJsonBytes.ts"
import { errorMessage } from "../platform/ErrorCode.ts"

/** Entry kinds of tar-split's `storage.Type`. */
export const EntryType = { File: 1, Segment: 2 } as const

/** One tar-split entry, shaped like Go's `storage.Entry`. */
export interface TarSplitEntry {
  readonly type: number
  /** The UTF-8 name (empty when absent or when `nameRaw` is used). */
  readonly name: string
  /** The raw name bytes when the name is not valid UTF-8. */
  readonly nameRaw: Uint8Array | undefined
  readonly size: number
  /** CRC-64 of a file's content, raw bytes of a segment, or `null`. */
  readonly payload: Uint8Array | null
  readonly position: number
}

/** Thrown for an entry that Go's decoder would reject; the message says why. */
export class BadEntry extends Error {
  override readonly name = "BadEntry"
}

const utf8 = new TextEncoder()

/** The name as bytes, as tar-split's `GetNameBytes`: `name_raw` when present, else `name`. */
export const entryNameBytes = (entry: TarSplitEntry): Uint8Array =>
  entry.nameRaw !== undefined && entry.nameRaw.length > 0 ? entry.nameRaw : utf8.encode(entry.name)

/** The name for messages: `name`, or `name_raw` with invalid bytes replaced. */
export const entryDisplayName = (entry: TarSplitEntry): string =>
  entry.nameRaw !== undefined && entry.nameRaw.length > 0 ? new TextDecoder().decode(entry.nameRaw) : entry.name

/** Go folds keys case-insensitively when it finds no exact match (and folds K/ſ as k/s). */
const foldKey = (key: string): string => key.toLowerCase().replace(/\u017f/g, "s").replace(/\u212a/g, "k")

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** A number written with a fraction or an exponent (`1.0`, `1e3`): Go's `ParseInt` rejects it for an int field. */
class NonIntegerNumber {
  constructor(readonly raw: string) {}
}

// The decoders see no null: a null member leaves its field as it was (applyMember).

/** `Uint8Array.fromBase64` where the runtime has it (Bun and Deno do): 3x `Buffer.from` and its copy, no regex. */
const fromBase64 = (Uint8Array as unknown as { readonly fromBase64?: (text: string) => Uint8Array }).fromBase64

const decodeBase64 = (field: string, value: unknown): Uint8Array => {
  if (typeof value !== "string") throw new BadEntry(`cannot unmarshal ${jsonKind(value)} into field ${field} of type []byte`)
  // Go 1.5's base64 decoder skips CR and LF; anything else must be canonical padded base64.
  const text = value.includes("\r") || value.includes("\n") ? value.replace(/[\r\n]/g, "") : value
  const illegal = () => new BadEntry(`illegal base64 data in field ${field}`)
  if (text.length % 4 !== 0) throw illegal()
  if (fromBase64 === undefined) {
    if (!BASE64.test(text)) throw illegal()
    return new Uint8Array(Buffer.from(text, "base64"))
  }
  let bytes: Uint8Array
  try {
    bytes = fromBase64(text)
  } catch {
    throw illegal()
  }
  // It skips spaces, tabs and form feeds, which Go refuses: then fewer bytes come out than the length promises.
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0
  if (bytes.length !== (text.length / 4) * 3 - padding) throw illegal()
  return bytes
}

const decodeInt = (field: string, value: unknown): number => {
  if (value instanceof NonIntegerNumber) throw new BadEntry(`cannot unmarshal number ${value.raw} into field ${field} of type int`)
  if (typeof value !== "number") throw new BadEntry(`cannot unmarshal ${jsonKind(value)} into field ${field} of type int`)
  if (!Number.isSafeInteger(value)) throw new BadEntry(`cannot unmarshal number ${value} into field ${field} of type int`)
  return value
}

const decodeString = (field: string, value: unknown): string => {
  if (typeof value !== "string") {
    throw new BadEntry(`cannot unmarshal ${jsonKind(value)} into field ${field} of type string`)
  }
  return value
}

const jsonKind = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : value instanceof NonIntegerNumber
    ? "number"
    : typeof value === "object"
    ? "object"
    : typeof value


/** Mutable while the members are applied in order. */
type EntryFields = { -readonly [K in keyof TarSplitEntry]: TarSplitEntry[K] } & { nameRaw: Uint8Array | undefined }

/**
 * Applies one member as Go's decoder does: the field is found by its exact
 * name, else case-insensitively; `null` leaves it as it was; a later member
 * overwrites an earlier one; unknown keys are ignored.
 */
const applyMember = (entry: EntryFields, key: string, value: unknown) => {
  if (value === null) return
  // tar-split writes the field names exactly: folding is for the rare key that differs.
  switch (FIELD_NAMES.has(key) ? key : foldKey(key)) {
    case "type":
      entry.type = decodeInt("type", value)
      break
    case "name":
      entry.name = decodeString("name", value)
      break
    case "name_raw":
      entry.nameRaw = decodeBase64("name_raw", value)
      break
    case "size":
      entry.size = decodeInt("size", value)
      break
    case "payload":
      entry.payload = decodeBase64("payload", value)
      break
    case "position":
      entry.position = decodeInt("position", value)
      break
  }
}

const FIELD_NAMES: ReadonlySet<string> = new Set(["type", "name", "name_raw", "size", "payload", "position"])

const emptyEntry = (): EntryFields => ({ type: 0, name: "", nameRaw: undefined, size: 0, payload: null, position: 0 })

/** A plain value of a tree node, numbers written with a fraction or exponent kept as such. */
const plainValue = (node: JsonNode): unknown => {
  switch (node.kind) {
    case "object":
      return Object.fromEntries(node.members.map(([key, value]) => [key, plainValue(value)]))
    case "array":
      return node.items.map(plainValue)
    case "string":
    case "bool":
      return node.value
    case "null":
      return null
    case "number":
      return /^-?(?:0|[1-9]\d*)$/.test(node.raw) ? Number(node.raw) : new NonIntegerNumber(node.raw)
  }
}

/** Every member in order, duplicates included (what `JSON.parse` cannot give). */
const decodeEntryTree = (node: JsonNode): TarSplitEntry => {
  if (node.kind === "null") return emptyEntry()
  if (node.kind !== "object") throw new BadEntry(`cannot unmarshal ${node.kind === "bool" ? "boolean" : node.kind} into a tar-split entry`)
  const entry = emptyEntry()
  for (const [key, value] of node.members) applyMember(entry, key, plainValue(value))
  return entry
}

// JSON.parse keeps one member per key and reads 1.0 as 1. Where a line may hold a number written
// with a fraction or exponent, or more members than keys (a `:` per member; a name may hold more),
// it is decoded again member by member.
const MAYBE_NON_INTEGER = /"\s*:\s*-?\d+[.eE]/
const colons = (text: string) => {
  let count = 0
  for (let at = text.indexOf(":"); at >= 0; at = text.indexOf(":", at + 1)) count++
  return count
}

/**
 * Decodes one line of tar-split metadata: JSON, then the entry, with Go's
 * rules for both. `parsed`, when given, is `JSON.parse(text)` already done.
 */
export const decodeEntryText = (text: string, parsed?: unknown): TarSplitEntry => {
  let value: unknown = parsed
  if (value === undefined) {
    try {
      value = JSON.parse(text)
    } catch (error) {
      throw new BadEntry(`invalid JSON in tar-split metadata: ${errorMessage(error)}`)
    }
  }
  const exact = MAYBE_NON_INTEGER.test(text) ||
    (value !== null && typeof value === "object" && colons(text) > Object.keys(value).length)
  return exact ? decodeEntryTree(parseJsonTree(utf8.encode(text))) : decodeEntry(value)
}

/** Builds an entry from one parsed JSON value, with Go's rules for `json.Unmarshal` into `storage.Entry`. */
export const decodeEntry = (value: unknown): TarSplitEntry => {
  if (value === null) return emptyEntry()
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new BadEntry(`cannot unmarshal ${jsonKind(value)} into a tar-split entry`)
  }
  const entry = emptyEntry()
  for (const [key, field] of Object.entries(value)) applyMember(entry, key, field)
  return entry
}

/**
 * Encodes an entry as one line exactly as tar-split's JSON packer does
 * (`json.Encoder`: Go field order, `omitempty`, trailing newline). A name
 * that is not valid UTF-8 goes to `name_raw`, as `SetNameBytes` does.
 */
export const encodeEntry = (
  entry: { readonly type: number; readonly name?: Uint8Array; readonly size?: number; readonly payload: Uint8Array | null },
  position: number,
): string => {
  let out = `{"type":${entry.type}`
  const name = entry.name
  if (name !== undefined && name.length > 0) {
    out += isValidUtf8(name) ? `,"name":${goQuote(name)}` : `,"name_raw":"${Buffer.from(name).toString("base64")}"`
  }
  if (entry.size !== undefined && entry.size !== 0) out += `,"size":${entry.size}`
  out += entry.payload === null ? `,"payload":null` : `,"payload":"${Buffer.from(entry.payload).toString("base64")}"`
  return out + `,"position":${position}}\n`
}

/** Longest entry (one JSON value) read from tar-split metadata: tar-split writes headers and padding, a few KiB each. */
export const MAX_ENTRY_TEXT = 64 << 20

const tooLong = () => new BadEntry(`an entry longer than ${MAX_ENTRY_TEXT >> 20} MiB`)

/**
 * Splits a stream of JSON text into top-level values, as Go's `json.Decoder`
 * reads them: any whitespace between values, values may span lines. The fast
 * path is one value per line (what tar-split writes); the first line that is
 * not hands the rest to a character scanner. Both are linear in the text,
 * however long a line, and an entry longer than `MAX_ENTRY_TEXT` is refused.
 */
export class JsonValueSplitter {
  /** The text of an incomplete line, in the pieces it came in. */
  private carry: Array<string> = []
  private carryLength = 0
  private scanner: ValueScanner | undefined

  /** Feeds text; returns the complete values found so far, in order. */
  push(text: string): Array<string> {
    return this.pushParsed(text, [])
  }

  /**
   * As `push`, and puts in `parsed[i]` what `JSON.parse` gave for `values[i]`
   * where the fast path parsed it (undefined where it did not), so that the
   * line is not parsed twice (`decodeEntryText`'s second argument).
   */
  pushParsed(text: string, parsed: Array<unknown>): Array<string> {
    if (this.scanner !== undefined) return this.scanner.push(text)
    const values: Array<string> = []
    let start = 0
    for (;;) {
      const newline = text.indexOf("\n", start)
      if (newline < 0) break
      if (newline === start && this.carryLength === 0) {
        start++
        continue
      }
      let line = text.slice(start, newline)
      if (this.carryLength > 0) {
        this.carry.push(line)
        line = this.carry.join("")
        this.carry = []
        this.carryLength = 0
      }
      start = newline + 1
      const value = singleValueOf(line)
      if (value !== undefined) {
        parsed[values.length] = value
        values.push(line)
      } else if (line.trim() !== "") {
        this.scanner = new ValueScanner()
        values.push(...this.scanner.push(line + "\n" + text.slice(start)))
        return values
      }
    }
    if (start < text.length) {
      this.carry.push(text.slice(start))
      this.carryLength += text.length - start
      if (this.carryLength > MAX_ENTRY_TEXT) throw tooLong()
    }
    return values
  }

  /** Call at end of input: returns the last value, or throws if the input ends inside one. */
  finish(): Array<string> {
    const scanner = this.scanner ?? new ValueScanner()
    const values = this.scanner === undefined ? scanner.push(this.carry.join("")) : []
    this.carry = []
    this.carryLength = 0
    return [...values, ...scanner.finish()]
  }
}

/** The value of a line holding exactly one object (the common case, checked without scanning), else undefined. */
const singleValueOf = (line: string): unknown => {
  if (line.length < 2 || line.charCodeAt(0) !== 0x7b || line.charCodeAt(line.length - 1) !== 0x7d) return undefined
  // JSON.parse rejects trailing text, so a line that parses is a single value.
  try {
    return JSON.parse(line) as unknown
  } catch {
    return undefined
  }
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
/** Where a literal or number ends: whitespace or a structural character. */
const endsLiteral = (c: number) =>
  isSpace(c) || c === 0x7b || c === 0x7d || c === 0x5b || c === 0x5d || c === 0x2c || c === 0x3a || c === 0x22

/**
 * Finds where top-level JSON values end, character by character, with its
 * state kept between pushes (so a value split over many pushes is scanned
 * once). It only delimits values; `decodeEntryText` validates them.
 */
class ValueScanner {
  private pieces: Array<string> = []
  private length = 0
  private started = false
  private depth = 0
  private inString = false
  private escaped = false
  private inLiteral = false

  push(text: string): Array<string> {
    const values: Array<string> = []
    let valueStart = 0
    const complete = (end: number) => {
      this.pieces.push(text.slice(valueStart, end))
      values.push(this.pieces.join(""))
      this.pieces = []
      this.length = 0
      this.started = false
      this.inLiteral = false
    }
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (!this.started) {
        if (isSpace(c)) continue
        this.started = true
        valueStart = i
        if (c === 0x22) this.inString = true
        else if (c === 0x7b || c === 0x5b) this.depth = 1
        else if (endsLiteral(c)) throw new BadEntry(`invalid character '${text[i]}' looking for beginning of value`)
        else this.inLiteral = true
        continue
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === 0x5c) this.escaped = true
        else if (c === 0x22) {
          this.inString = false
          if (this.depth === 0) complete(i + 1)
        }
        continue
      }
      if (this.inLiteral) {
        if (endsLiteral(c)) {
          complete(i)
          i-- // the terminator may start the next value
        }
        continue
      }
      if (c === 0x22) this.inString = true
      else if (c === 0x7b || c === 0x5b) this.depth++
      else if (c === 0x7d || c === 0x5d) {
        this.depth--
        if (this.depth === 0) complete(i + 1)
      }
    }
    if (this.started) {
      this.pieces.push(text.slice(valueStart))
      this.length += text.length - valueStart
      if (this.length > MAX_ENTRY_TEXT) throw tooLong()
    }
    return values
  }

  finish(): Array<string> {
    if (!this.started) return []
    if (!this.inLiteral) throw new BadEntry("unexpected end of JSON input")
    const value = this.pieces.join("")
    this.pieces = []
    this.started = false
    return [value]
  }
}
