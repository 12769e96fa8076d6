/**
 * JSON as bytes, the way Go 1.5's `encoding/json` handles it where Docker
 * keeps values raw (`map[string]*json.RawMessage`): validate, split an
 * object into members with their raw value bytes, unquote keys, and compact
 * raw values with HTML-safe escaping (`json.Marshal` of a `RawMessage`).
 * Raw values keep their bytes: numbers as written (`1.50`, `-0`, `1E400`),
 * escapes as written, even invalid UTF-8.
 *
 * @module
 */

/** Input that Go's decoder rejects; the message says where. */
export class GoJsonSyntaxError extends Error {
  override readonly name = "GoJsonSyntaxError"
}

/** A value's bytes: `[start, end)` in the input. */
export interface RawRange {
  readonly start: number
  readonly end: number
}

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d
const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39

/** A validating scanner over JSON bytes. */
class Scanner {
  at = 0
  constructor(readonly bytes: Uint8Array) {}

  fail(what: string): never {
    const found = this.at < this.bytes.length ? `'${String.fromCharCode(this.bytes[this.at]!)}'` : "end of input"
    throw new GoJsonSyntaxError(`invalid character ${found} ${what} (offset ${this.at})`)
  }

  space() {
    while (isSpace(this.bytes[this.at])) this.at++
  }

  /**
   * Scans one value. Iterative, with its own stack of open containers: JSON
   * nested 100,000 deep (which Go 1.5's decoder accepted) must not overflow
   * ours.
   */
  value(): RawRange {
    this.space()
    const start = this.at
    const open: Array<number> = []
    for (;;) {
      this.space()
      const b = this.bytes[this.at]
      if (b === 0x7b || b === 0x5b) {
        this.at++
        this.space()
        const close = b === 0x7b ? 0x7d : 0x5d
        if (this.bytes[this.at] === close) this.at++
        else {
          open.push(b)
          if (b === 0x7b) this.key()
          continue
        }
      } else if (b === 0x22) this.string()
      else if (b === 0x2d || isDigit(b)) this.number()
      else if (b === 0x74) this.literal("true")
      else if (b === 0x66) this.literal("false")
      else if (b === 0x6e) this.literal("null")
      else this.fail("looking for beginning of value")
      // A value ended: close what it ends, or step past the comma to the next one.
      for (;;) {
        if (open.length === 0) return { start, end: this.at }
        this.space()
        const inObject = open[open.length - 1] === 0x7b
        const next = this.bytes[this.at]
        if (next === (inObject ? 0x7d : 0x5d)) {
          this.at++
          open.pop()
          continue
        }
        if (next !== 0x2c) this.fail(inObject ? "after object key:value pair" : "after array element")
        this.at++
        if (inObject) this.key()
        break
      }
    }
  }

  /** An object key and its colon. */
  key(): RawRange {
    this.space()
    if (this.bytes[this.at] !== 0x22) this.fail("looking for beginning of object key string")
    const start = this.at
    this.string()
    const end = this.at
    this.space()
    if (this.bytes[this.at] !== 0x3a) this.fail("after object key")
    this.at++
    return { start, end }
  }

  /** Scans a top-level object, calling `member` for each value after its key (`member` scans the value). */
  object(member: (key: RawRange) => void) {
    this.at++ // {
    this.space()
    if (this.bytes[this.at] === 0x7d) {
      this.at++
      return
    }
    for (;;) {
      member(this.key())
      this.space()
      const next = this.bytes[this.at]
      this.at++
      if (next === 0x7d) return
      if (next !== 0x2c) {
        this.at--
        this.fail("after object key:value pair")
      }
    }
  }

  string() {
    this.at++ // "
    for (;;) {
      const b = this.bytes[this.at]
      if (b === undefined) this.fail("in string literal")
      if (b === 0x22) {
        this.at++
        return
      }
      if (b < 0x20) this.fail("in string literal")
      if (b === 0x5c) {
        const e = this.bytes[this.at + 1]
        if (e === 0x75) {
          for (let i = 2; i < 6; i++) {
            const h = this.bytes[this.at + i]
            if (h === undefined || !/[0-9a-fA-F]/.test(String.fromCharCode(h))) {
              this.at += i
              this.fail("in \\u hexadecimal character escape")
            }
          }
          this.at += 6
          continue
        }
        if (e === undefined || !"\"\\/bfnrt".includes(String.fromCharCode(e))) {
          this.at++
          this.fail("in string escape code")
        }
        this.at += 2
        continue
      }
      this.at++
    }
  }

  number() {
    if (this.bytes[this.at] === 0x2d) this.at++
    if (this.bytes[this.at] === 0x30) this.at++
    else if (isDigit(this.bytes[this.at])) while (isDigit(this.bytes[this.at])) this.at++
    else this.fail("in numeric literal")
    if (this.bytes[this.at] === 0x2e) {
      this.at++
      if (!isDigit(this.bytes[this.at])) this.fail("after decimal point in numeric literal")
      while (isDigit(this.bytes[this.at])) this.at++
    }
    if (this.bytes[this.at] === 0x65 || this.bytes[this.at] === 0x45) {
      this.at++
      if (this.bytes[this.at] === 0x2b || this.bytes[this.at] === 0x2d) this.at++
      if (!isDigit(this.bytes[this.at])) this.fail("in exponent of numeric literal")
      while (isDigit(this.bytes[this.at])) this.at++
    }
  }

  literal(word: string) {
    for (let i = 0; i < word.length; i++) {
      if (this.bytes[this.at] !== word.charCodeAt(i)) this.fail(`in literal ${word} (expecting '${word[i]}')`)
      this.at++
    }
  }
}

/** Checks that `bytes` is one JSON value (with surrounding space), as `json.Unmarshal` requires. */
export const validateJson = (bytes: Uint8Array): void => {
  const scanner = new Scanner(bytes)
  scanner.value()
  scanner.space()
  if (scanner.at !== bytes.length) scanner.fail("after top-level value")
}

/**
 * The members of a top-level object in order, keys unquoted, values raw; a
 * later duplicate key replaces an earlier one (Go's map assignment). Throws
 * if the input is not exactly one JSON object.
 */
export const objectMembers = (bytes: Uint8Array): Map<string, Uint8Array> => {
  validateJson(bytes)
  const scanner = new Scanner(bytes)
  scanner.space()
  if (bytes[scanner.at] !== 0x7b) {
    throw new GoJsonSyntaxError("json: cannot unmarshal a non-object into Go value of type map[string]*json.RawMessage")
  }
  const members = new Map<string, Uint8Array>()
  scanner.object((key) => {
    const value = scanner.value()
    const name = unquote(bytes.subarray(key.start, key.end))
    members.delete(name) // a re-assigned key keeps Go's map semantics; order is irrelevant (keys are sorted later)
    members.set(name, bytes.subarray(value.start, value.end))
  })
  return members
}

const decoder = new TextDecoder()

/** Go's `unquote`: a JSON string literal to text (invalid UTF-8 and lone surrogates become U+FFFD). */
export const unquote = (literal: Uint8Array): string => {
  const inner = literal.subarray(1, literal.length - 1)
  // No escape: the text is the bytes (invalid UTF-8 becomes U+FFFD, as below).
  if (inner.indexOf(0x5c) === -1) return decoder.decode(inner)
  let out = ""
  let i = 0
  let run = 0
  const flush = (end: number) => {
    if (run < end) out += decoder.decode(inner.subarray(run, end))
  }
  while (i < inner.length) {
    if (inner[i] !== 0x5c) {
      i++
      continue
    }
    flush(i)
    const e = String.fromCharCode(inner[i + 1]!)
    if (e === "u") {
      const code = parseInt(decoder.decode(inner.subarray(i + 2, i + 6)), 16)
      i += 6
      if (code >= 0xd800 && code < 0xdc00) {
        const low = inner[i] === 0x5c && inner[i + 1] === 0x75 ? parseInt(decoder.decode(inner.subarray(i + 2, i + 6)), 16) : -1
        if (low >= 0xdc00 && low < 0xe000) {
          out += String.fromCharCode(code, low)
          i += 6
        } else {
          out += "\ufffd"
        }
      } else if (code >= 0xdc00 && code < 0xe000) {
        out += "\ufffd"
      } else {
        out += String.fromCharCode(code)
      }
    } else {
      out += { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e] ?? e
      i += 2
    }
    run = i
  }
  flush(inner.length)
  return out
}

const HEX = "0123456789abcdef"

/** Go's `compact` with HTML escaping: drops insignificant space; escapes <, >, & and U+2028/U+2029. */
export const compactJson = (raw: Uint8Array): Uint8Array => {
  // Escapes grow the output (one byte to six); it is sized for the common case and grown when needed.
  let out = new Uint8Array(raw.length + 64)
  let length = 0
  const push = (b: number) => {
    if (length === out.length) {
      const bigger = new Uint8Array(out.length * 2)
      bigger.set(out)
      out = bigger
    }
    out[length++] = b
  }
  const pushText = (text: string) => {
    for (let k = 0; k < text.length; k++) push(text.charCodeAt(k))
  }
  let inString = false
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!
    if (inString) {
      if (b === 0x5c) {
        push(b)
        push(raw[++i]!)
        continue
      }
      if (b === 0x22) inString = false
    } else {
      if (isSpace(b)) continue
      if (b === 0x22) inString = true
    }
    if (b === 0x3c || b === 0x3e || b === 0x26) {
      pushText(`\\u00${HEX[b >> 4]}${HEX[b & 15]}`)
      continue
    }
    if (b === 0xe2 && raw[i + 1] === 0x80 && (raw[i + 2] === 0xa8 || raw[i + 2] === 0xa9)) {
      pushText(`\\u202${raw[i + 2] === 0xa8 ? "8" : "9"}`)
      i += 2
      continue
    }
    push(b)
  }
  return out.subarray(0, length)
}

/** A parsed JSON value that keeps what Go's typed decoding needs: numbers as written, object members in order. */
export type JsonNode =
  | { readonly kind: "object"; readonly members: ReadonlyArray<readonly [string, JsonNode]> }
  | { readonly kind: "array"; readonly items: ReadonlyArray<JsonNode> }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "number"; readonly raw: string }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "null" }

type OpenNode =
  | { readonly kind: "object"; readonly members: Array<readonly [string, JsonNode]>; key: string }
  | { readonly kind: "array"; readonly items: Array<JsonNode> }

/** Parses (and validates) one JSON value into a `JsonNode`; iterative, so any depth parses. */
export const parseJsonTree = (bytes: Uint8Array): JsonNode => {
  validateJson(bytes)
  const scanner = new Scanner(bytes)
  const open: Array<OpenNode> = []
  const keyText = () => {
    const key = scanner.key()
    return unquote(bytes.subarray(key.start, key.end))
  }
  for (;;) {
    scanner.space()
    const b = bytes[scanner.at]
    let done: JsonNode
    if (b === 0x7b || b === 0x5b) {
      scanner.at++
      scanner.space()
      if (bytes[scanner.at] === (b === 0x7b ? 0x7d : 0x5d)) {
        scanner.at++
        done = b === 0x7b ? { kind: "object", members: [] } : { kind: "array", items: [] }
      } else {
        open.push(b === 0x7b ? { kind: "object", members: [], key: keyText() } : { kind: "array", items: [] })
        continue
      }
    } else {
      const range = scanner.value()
      const raw = bytes.subarray(range.start, range.end)
      done = b === 0x22
        ? { kind: "string", value: unquote(raw) }
        : b === 0x74 || b === 0x66
        ? { kind: "bool", value: b === 0x74 }
        : b === 0x6e
        ? { kind: "null" }
        : { kind: "number", raw: decoder.decode(raw) }
    }
    // Attach the finished value; close the containers it finishes.
    for (;;) {
      const parent = open[open.length - 1]
      if (parent === undefined) return done
      if (parent.kind === "object") parent.members.push([parent.key, done])
      else parent.items.push(done)
      scanner.space()
      if (bytes[scanner.at] === 0x2c) {
        scanner.at++
        if (parent.kind === "object") parent.key = keyText()
        break
      }
      scanner.at++ // the closing bracket (validated above)
      open.pop()
      done = parent.kind === "object" ? { kind: "object", members: parent.members } : { kind: "array", items: parent.items }
    }
  }
}
