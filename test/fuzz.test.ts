/**
 * Property tests (fast-check): arbitrary input to the tar-split decoder and
 * splitter, Go's JSON scanner, Go's time parser and the reference parser
 * never throws anything but the module's typed error, and round trips hold
 * (tar-split entries, time, compaction, the tar writer read back).
 */
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { test } from "node:test"
import fc from "fast-check"
import { concatBytes } from "../src/Bytes.ts"
import { compactJson, GoJsonSyntaxError, objectMembers, parseJsonTree } from "../src/go/GoJsonBytes.ts"
import { GoTarWriter, type TarSink, TypeFlag } from "../src/tar/GoTarWriter.ts"
import { formatGoTime, GoTimeError, parseGoTime } from "../src/go/GoTime.ts"
import { decodeLegacyRepositories, legacyReference, LegacyRepositoriesError, ReferenceError } from "../src/legacy/References.ts"
import { BadEntry, decodeEntryText, encodeEntry, entryNameBytes, JsonValueSplitter } from "../src/tar/TarSplit.ts"

const RUNS = { numRuns: 300 }
const utf8 = new TextEncoder()

/** Runs `work`; an error other than `typed` fails the property. */
const onlyThrows = (typed: new (...args: never[]) => Error, work: () => unknown) => {
  try {
    work()
  } catch (error) {
    if (!(error instanceof typed)) throw new Error(`threw ${String(error)}, not a ${typed.name}`)
  }
}

const jsonish = fc.oneof(
  fc.string(),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom(`{"type":1,"name":"a","size":1e3,"payload":null,"position":0}`, `{"type":1.0}`, `{"name_raw":"!!"}`, `{"type":2,"payload":"AAA"}`),
)

test("tar-split: decodeEntryText of arbitrary text returns an entry or throws BadEntry", () => {
  fc.assert(fc.property(jsonish, (text) => onlyThrows(BadEntry, () => decodeEntryText(text))), RUNS)
})

const entry = fc.record({
  type: fc.constantFrom(1, 2),
  name: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  size: fc.nat(1 << 30),
  payload: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
})

test("tar-split: an encoded entry decodes to itself", () => {
  fc.assert(
    fc.property(entry, fc.nat(1000), (e, position) => {
      const decoded = decodeEntryText(encodeEntry(e, position).trimEnd())
      assert.equal(decoded.type, e.type)
      assert.deepEqual(Buffer.from(entryNameBytes(decoded)), Buffer.from(e.name))
      assert.equal(decoded.size, e.size)
      assert.deepEqual(decoded.payload === null ? null : Buffer.from(decoded.payload), e.payload === null ? null : Buffer.from(e.payload))
    }),
    RUNS,
  )
})

test("tar-split: the splitter gives the same values however the stream is cut", () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 12 }), fc.array(fc.nat(2000), { maxLength: 8 }), fc.boolean(), (entries, cuts, multiline) => {
      let stream = entries.map((e, i) => encodeEntry(e, i)).join("")
      if (multiline) stream = stream.replaceAll(`,"position":`, `,\n "position":`) // values across lines: the scanner
      const whole = new JsonValueSplitter()
      const expected = [...whole.push(stream), ...whole.finish()]
      const pieces = new JsonValueSplitter()
      const got: Array<string> = []
      let at = 0
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const end = Math.min(cut, stream.length)
        if (end < at) continue
        got.push(...pieces.push(stream.slice(at, end)))
        at = end
      }
      got.push(...pieces.push(stream.slice(at)), ...pieces.finish())
      assert.deepEqual(got.map((v) => JSON.parse(v)), expected.map((v) => JSON.parse(v)))
      assert.equal(expected.length, entries.length)
    }),
    RUNS,
  )
})

test("tar-split: the splitter on arbitrary text returns values or throws BadEntry", () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) =>
      onlyThrows(BadEntry, () => {
        const splitter = new JsonValueSplitter()
        splitter.push(a)
        splitter.push(b)
        splitter.finish()
      })),
    RUNS,
  )
})

test("Go JSON: arbitrary bytes parse or throw GoJsonSyntaxError; any depth parses", () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map((s) => utf8.encode(s))), (bytes) => {
      onlyThrows(GoJsonSyntaxError, () => parseJsonTree(bytes))
      onlyThrows(GoJsonSyntaxError, () => objectMembers(bytes))
    }),
    RUNS,
  )
  const deep = utf8.encode(`{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`)
  assert.equal(objectMembers(deep).get("a")!.length, 200_000)
  assert.equal(parseJsonTree(deep).kind, "object")
})

test("Go JSON: compactJson of an indented value is JSON.stringify's text with Go's HTML escapes", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const goEscaped = JSON.stringify(value)
        .replaceAll("<", "\\u003c").replaceAll(">", "\\u003e").replaceAll("&", "\\u0026")
        .replaceAll("\u2028", "\\u2028").replaceAll("\u2029", "\\u2029")
      assert.equal(new TextDecoder().decode(compactJson(utf8.encode(JSON.stringify(value, null, 2)))), goEscaped)
    }),
    RUNS,
  )
})

test("Go time: arbitrary text parses or throws GoTimeError; a formatted time parses back to itself", () => {
  fc.assert(fc.property(fc.string(), (text) => onlyThrows(GoTimeError, () => parseGoTime(text))), RUNS)
  fc.assert(
    fc.property(fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), fc.nat(999_999_999), (date, ns) => {
      const text = date.toISOString().slice(0, 19) + `.${String(ns).padStart(9, "0")}Z`
      const time = parseGoTime(text)
      assert.deepEqual(parseGoTime(formatGoTime(time)), time)
    }),
    RUNS,
  )
})

test("references: arbitrary names and tags give a reference or throw ReferenceError; repositories decode or throw LegacyRepositoriesError", () => {
  fc.assert(fc.property(fc.string(), fc.string(), (name, tag) => onlyThrows(ReferenceError, () => legacyReference(name, tag))), RUNS)
  fc.assert(
    fc.property(fc.oneof(fc.json(), fc.string()), (text) => onlyThrows(LegacyRepositoriesError, () => decodeLegacyRepositories(utf8.encode(text)))),
    RUNS,
  )
})

/** Reads back a Go-written tar: names (ustar prefix or PAX path), sizes and contents. */
const readTar = (stream: Uint8Array) => {
  const out: Array<{ name: string; content: Uint8Array }> = []
  const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b).replace(/\0.*$/s, "")
  let paxPath: string | undefined
  for (let at = 0; at + 512 <= stream.length;) {
    const block = stream.subarray(at, at + 512)
    if (block.every((b) => b === 0)) break
    const size = parseInt(text(block.subarray(124, 136)).trim() || "0", 8)
    const content = stream.subarray(at + 512, at + 512 + size)
    at += 512 + Math.ceil(size / 512) * 512
    if (block[156] === TypeFlag.PaxHeader) {
      const match = /\d+ path=(.*)\n/s.exec(new TextDecoder("latin1").decode(content))
      paxPath = match?.[1]
      continue
    }
    const prefix = text(block.subarray(345, 500))
    const name = paxPath ?? (prefix === "" ? text(block.subarray(0, 100)) : `${prefix}/${text(block.subarray(0, 100))}`)
    paxPath = undefined
    out.push({ name, content })
  }
  return out
}

test("tar writer: any set of files reads back with their names and contents", () => {
  const name = fc.array(fc.stringMatching(/^[a-z0-9._-]{1,60}$/), { minLength: 1, maxLength: 5 }).map((parts) => parts.join("/"))
  fc.assert(
    fc.property(fc.uniqueArray(fc.record({ name, content: fc.uint8Array({ maxLength: 1500 }) }), { selector: (f) => f.name, maxLength: 6 }), (files) => {
      const chunks: Array<Uint8Array> = []
      const sink: TarSink = { raw: (b) => void chunks.push(b.slice()), beginEntry: () => {}, content: (b) => void chunks.push(b.slice()) }
      const writer = new GoTarWriter(sink, 1)
      for (const file of files) {
        writer.writeHeader({
          name: utf8.encode(file.name),
          mode: 0o100644,
          uid: 0,
          gid: 0,
          size: file.content.length,
          mtimeNs: 0n,
          typeflag: TypeFlag.Regular,
          linkname: new Uint8Array(0),
          devmajor: 0,
          devminor: 0,
          xattrs: [],
        })
        if (file.content.length > 0) writer.write(file.content)
      }
      writer.close()
      const stream = concatBytes(chunks)
      assert.equal(stream.length % 512, 0)
      const back = readTar(stream)
      assert.deepEqual(back.map((f) => f.name), files.map((f) => f.name))
      back.forEach((f, i) => assert.deepEqual(Buffer.from(f.content), Buffer.from(files[i]!.content)))
    }),
    RUNS,
  )
})
