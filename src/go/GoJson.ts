/**
 * JSON text exactly as Go 1.5's `encoding/json` writes it: HTML-safe string
 * escaping, `\ufffd` for invalid UTF-8, `\u2028`/`\u2029` escaped. Docker's
 * tar-split files and image configs are byte-exact products of this encoder.
 *
 * @example
 * ```ts
 * goQuote("a<b") // "\"a\\u003cb\""
 * ```
 * @module
 */

const HEX = "0123456789abcdef"
const utf8 = new TextEncoder()

/** Printable ASCII that Go writes as it is (not `"`, `\\`, `<`, `>`, `&`): most strings in a config are all of it. */
const PLAIN = /^[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\x5b\x5d-\x7f]*$/

/** Quotes a string (given as text or as raw bytes) the way Go 1.5's `encodeState.string` does. */
export const goQuote = (value: string | Uint8Array): string => {
  if (typeof value === "string" && PLAIN.test(value)) return `"${value}"`
  const bytes = typeof value === "string" ? utf8.encode(value) : value
  let out = "\""
  let i = 0
  let start = 0
  const flush = (end: number) => {
    if (start < end) out += decodeUtf8(bytes.subarray(start, end))
  }
  while (i < bytes.length) {
    const b = bytes[i]!
    if (b < 0x80) {
      if (b >= 0x20 && b !== 0x5c && b !== 0x22 && b !== 0x3c && b !== 0x3e && b !== 0x26) {
        i++
        continue
      }
      flush(i)
      if (b === 0x5c || b === 0x22) out += "\\" + String.fromCharCode(b)
      else if (b === 0x0a) out += "\\n"
      else if (b === 0x0d) out += "\\r"
      else if (b === 0x09) out += "\\t"
      else out += "\\u00" + HEX[b >> 4] + HEX[b & 15]
      i++
      start = i
      continue
    }
    const size = validRuneLength(bytes, i)
    if (size === 0) {
      flush(i)
      out += "\\ufffd"
      i++
      start = i
      continue
    }
    // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
    if (size === 3 && b === 0xe2 && bytes[i + 1] === 0x80 && (bytes[i + 2] === 0xa8 || bytes[i + 2] === 0xa9)) {
      flush(i)
      out += bytes[i + 2] === 0xa8 ? "\\u2028" : "\\u2029"
      i += 3
      start = i
      continue
    }
    i += size
  }
  flush(bytes.length)
  return out + "\""
}

const decoder = new TextDecoder()
const decodeUtf8 = (bytes: Uint8Array): string => decoder.decode(bytes)

/** Length of the valid UTF-8 sequence at `i` (as Go's `utf8.DecodeRune` accepts it), or 0 if invalid. */
const validRuneLength = (bytes: Uint8Array, i: number): number => {
  const b0 = bytes[i]!
  const cont = (k: number) => {
    const b = bytes[i + k]
    return b !== undefined && (b & 0xc0) === 0x80
  }
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(1) || !cont(2)) return 0
    const b1 = bytes[i + 1]!
    if (b0 === 0xe0 && b1 < 0xa0) return 0 // overlong
    if (b0 === 0xed && b1 >= 0xa0) return 0 // surrogate
    return 3
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0
    const b1 = bytes[i + 1]!
    if (b0 === 0xf0 && b1 < 0x90) return 0 // overlong
    if (b0 === 0xf4 && b1 >= 0x90) return 0 // above U+10FFFF
    return 4
  }
  return 0
}

/** True when `bytes` is entirely valid UTF-8 (Go's `utf8.Valid`). */
export const isValidUtf8 = (bytes: Uint8Array): boolean => {
  let i = 0
  while (i < bytes.length) {
    if (bytes[i]! < 0x80) {
      i++
      continue
    }
    const size = validRuneLength(bytes, i)
    if (size === 0) return false
    i += size
  }
  return true
}
