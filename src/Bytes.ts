/**
 * Small operations on byte strings (Linux names and tar fields are bytes,
 * not text), shared by the tar writer, the archiver and the tar-split codec.
 *
 * @module
 */

/** The parts one after the other. */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** Byte-wise order, as Go compares strings. */
export const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** Same bytes; `null` equals only `null`. */
export const equalBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean =>
  a === null || b === null ? a === b : compareBytes(a, b) === 0

/** A string with one character per byte: a one-to-one map key for byte names. */
export const latin1 = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 8192)))
  }
  return out
}

/** `texts` in the byte-wise order of their UTF-8 (Go's string order), each encoded once. */
export const sortedByUtf8 = (texts: Iterable<string>): Array<string> => {
  const encoder = new TextEncoder()
  return [...texts].map((text) => ({ text, bytes: encoder.encode(text) }))
    .sort((a, b) => compareBytes(a.bytes, b.bytes))
    .map((entry) => entry.text)
}
