/**
 * Go 1.5's string quoting and unquoting: the fast paths for plain text give
 * what the byte-by-byte paths give, on any string.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { goQuote } from "../src/go/GoJson.ts"
import { unquote } from "../src/go/GoJsonBytes.ts"

const utf8 = new TextEncoder()

test("goQuote escapes as Go 1.5's encoder: HTML-safe, control bytes, U+2028/9, invalid UTF-8", () => {
  assert.equal(goQuote("a<b>&c"), String.raw`"a\u003cb\u003e\u0026c"`)
  assert.equal(goQuote(String.raw`q"b\s`), String.raw`"q\"b\\s"`)
  assert.equal(goQuote("t\tn\nr\r\u0001"), String.raw`"t\tn\nr\r\u0001"`)
  assert.equal(goQuote("del\u007f ok"), "\"del\u007f ok\"")
  assert.equal(goQuote("line\u2028para\u2029"), String.raw`"line\u2028para\u2029"`)
  assert.equal(goQuote("é 日本"), "\"é 日本\"")
  assert.equal(goQuote(new Uint8Array([0x61, 0xff, 0x62])), String.raw`"a\ufffdb"`)
  assert.equal(goQuote("/bin/sh -c #(nop) CMD [\"sh\"]"), String.raw`"/bin/sh -c #(nop) CMD [\"sh\"]"`)
})

test("goQuote of a string equals goQuote of its UTF-8 bytes (the plain-text fast path changes nothing)", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ maxLength: 40 })), (text) => {
      assert.equal(goQuote(text), goQuote(utf8.encode(text)))
    }),
    { numRuns: 3000 },
  )
})

test("unquote reads back what JSON.stringify writes, with or without escapes", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 40 }), (text) => {
      const literal = JSON.stringify(text)
      assert.equal(unquote(utf8.encode(literal)), JSON.parse(literal))
    }),
    { numRuns: 3000 },
  )
  assert.equal(unquote(new Uint8Array([0x22, 0x61, 0xff, 0x22])), "a\ufffd", "invalid UTF-8 becomes U+FFFD on the fast path too")
})
