import assert from "node:assert/strict"
import { test } from "node:test"
import {
  BadEntry,
  decodeEntry,
  decodeEntryText,
  encodeEntry,
  entryDisplayName,
  entryNameBytes,
  EntryType,
  JsonValueSplitter,
} from "../src/tar/TarSplit.ts"

const decodeLine = (line: string) => decodeEntry(JSON.parse(line))

test("a file entry with a UTF-8 name decodes name, size and CRC payload", () => {
  const entry = decodeLine('{"type":1,"name":"bin/busybox","size":3089,"payload":"DckdxI3O42I=","position":29}')
  assert.equal(entry.type, EntryType.File)
  assert.equal(entry.name, "bin/busybox")
  assert.equal(entry.size, 3089)
  assert.deepEqual([...entry.payload!], [0x0d, 0xc9, 0x1d, 0xc4, 0x8d, 0xce, 0xe3, 0x62])
  assert.equal(entry.position, 29)
})

test("name_raw carries a non-UTF-8 name as base64 and wins over name", () => {
  const entry = decodeLine('{"type":1,"name":"ignored","name_raw":"Zv9x","size":1,"payload":null,"position":3}')
  assert.deepEqual([...entryNameBytes(entry)], [0x66, 0xff, 0x71])
  assert.equal(entryDisplayName(entry), "f\ufffdq")
})

test("keys match case-insensitively, as Go's json.Unmarshal does", () => {
  const entry = decodeLine('{"TYPE":2,"Payload":"AAA=","POSITION":0}')
  assert.equal(entry.type, EntryType.Segment)
  assert.deepEqual([...entry.payload!], [0, 0])
})

test("null fields leave zero values; unknown keys are ignored", () => {
  const entry = decodeLine('{"type":1,"name":null,"size":null,"payload":null,"extra":[1,2],"position":null}')
  assert.equal(entry.name, "")
  assert.equal(entry.size, 0)
  assert.equal(entry.payload, null)
})

test("a wrongly typed field is a bad entry", () => {
  assert.throws(() => decodeLine('{"type":"1","payload":null,"position":0}'), BadEntry)
  assert.throws(() => decodeLine('{"type":1,"size":1.5,"payload":null,"position":0}'), BadEntry)
  assert.throws(() => decodeLine('{"type":1,"name":7,"payload":null,"position":0}'), BadEntry)
  assert.throws(() => decodeLine("[1,2]"), BadEntry)
})

test("an integer field written with a fraction or an exponent is a bad entry, as in Go; elsewhere it is not", () => {
  assert.throws(() => decodeEntryText('{"type":1,"name":"a","size":1.0,"payload":null,"position":0}'), /cannot unmarshal number 1\.0 into field size/)
  assert.throws(() => decodeEntryText('{"type":1,"name":"a","size":0,"payload":null,"POSITION":1e0}'), /number 1e0 into field position/)
  assert.throws(() => decodeEntryText('{"type":2E0,"payload":"AA==","position":0}'), /field type/)
  // Not an integer field, or not a number: as JSON.parse says.
  assert.equal(decodeEntryText('{"type":1,"name":"v\\":1.5","size":3,"extra":2.5,"payload":null,"position":0}').size, 3)
  assert.equal(decodeEntryText('{"type":1,"name":"python3.9","size":-0,"payload":null,"position":2}').position, 2)
  assert.throws(() => decodeEntryText('{"type":1,'), /invalid JSON/)
})

test("members apply in order as Go's decoder does: duplicates, null, case folding, first type error", () => {
  const line = (members: string) => decodeEntryText(`{"type":1,"name":"a",${members},"payload":null,"position":0}`)
  assert.equal(line('"size":1,"SIZE":2,"size":3').size, 3) // JSON.parse alone would give 2
  assert.equal(line('"size":5,"size":null').size, 5)
  assert.equal(line('"Size":7').size, 7)
  assert.throws(() => line('"size":"x","size":1'), /cannot unmarshal string into field size/)
  assert.equal(decodeEntryText('{"type":1,"name":"a:b:c","size":2,"payload":null,"position":0}').name, "a:b:c")
})

test("payload must be padded standard base64", () => {
  assert.throws(() => decodeLine('{"type":2,"payload":"AAA","position":0}'), /base64/)
  assert.throws(() => decodeLine('{"type":2,"payload":"A-A=","position":0}'), /base64/)
  assert.deepEqual([...decodeLine('{"type":2,"payload":"AA\\r\\nA=","position":0}').payload!], [0, 0])
})

test("encodeEntry writes Go's field order, omitempty and HTML-safe escaping", () => {
  const name = new TextEncoder().encode("a<b>&\u2028")
  assert.equal(
    encodeEntry({ type: 1, name, size: 5, payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) }, 4),
    '{"type":1,"name":"a\\u003cb\\u003e\\u0026\\u2028","size":5,"payload":"AQIDBAUGBwg=","position":4}\n',
  )
  assert.equal(encodeEntry({ type: 2, payload: new Uint8Array([0]) }, 0), '{"type":2,"payload":"AA==","position":0}\n')
  assert.equal(encodeEntry({ type: 1, name: new TextEncoder().encode("d/"), payload: null }, 1), '{"type":1,"name":"d/","payload":null,"position":1}\n')
})

test("encodeEntry moves a non-UTF-8 name to name_raw, as tar-split's packer does", () => {
  const line = encodeEntry({ type: 1, name: new Uint8Array([0x66, 0xff]), payload: null }, 0)
  assert.equal(line, '{"type":1,"name_raw":"Zv8=","payload":null,"position":0}\n')
  assert.deepEqual([...entryNameBytes(decodeLine(line))], [0x66, 0xff])
})

test("the splitter yields one value per line across chunk boundaries", () => {
  const splitter = new JsonValueSplitter()
  const text = '{"type":2,"payload":"AA==","position":0}\n{"type":1,"name":"x","payload":null,"position":1}\n'
  const values = [...splitter.push(text.slice(0, 17)), ...splitter.push(text.slice(17, 50)), ...splitter.push(text.slice(50))]
  values.push(...splitter.finish())
  assert.deepEqual(values.map((v) => JSON.parse(v).position), [0, 1])
})

test("the splitter accepts values spanning lines and several values on one line, as Go's Decoder", () => {
  const splitter = new JsonValueSplitter()
  const values = [...splitter.push('{"type":2,\n"payload":"AA==","position":0}{"type":1,"name":"a\\"}","position":1}\n  '), ...splitter.finish()]
  assert.deepEqual(values.map((v) => JSON.parse(v).position), [0, 1])
})

test("the splitter reports input that ends inside a value", () => {
  const splitter = new JsonValueSplitter()
  splitter.push('{"type":2,"payload":"AA=')
  assert.throws(() => splitter.finish(), /unexpected end/)
})

test("garbage that is not JSON fails, as in the fb_garbage golden", () => {
  const splitter = new JsonValueSplitter()
  const values = [...splitter.push("this is not json\n"), ...(() => {
    try {
      return splitter.finish()
    } catch (error) {
      return [String(error)]
    }
  })()]
  assert.ok(values.some((v) => {
    try {
      decodeLine(v)
      return false
    } catch {
      return true
    }
  }))
})

