import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { test } from "node:test"
import { crc64, crc64Bytes, crc64FromBytes, crc64Tables, crc64Update, crc64UpdateJs } from "../src/crc/Crc64.ts"
import { makeCrc64EngineFromModule, makeWasmCrc64Engine } from "../src/crc/Crc64Wasm.ts"
import { crc64WasmBytes } from "../src/crc/Crc64Wasm.bytes.ts"
import { crc64WasmModule, crc64WasmSource } from "../scripts/build-crc64-wasm.ts"

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Deterministic, byte-varied data (Knuth's multiplicative hash of the index), so every table entry gets used. */
const pattern = (length: number, seed = 0): Uint8Array => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.imul(i + seed, 2654435761) >>> 24
  return out
}

/** Bit-at-a-time CRC-64/ISO straight from the definition: the slowest, most obviously correct reference. */
const crc64Bitwise = (crc: bigint, data: Uint8Array): bigint => {
  const mask = 0xffffffffffffffffn
  crc = ~crc & mask
  for (const byte of data) {
    crc ^= BigInt(byte)
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ 0xd800000000000000n : crc >> 1n
  }
  return ~crc & mask
}

test('the CRC-64/ISO check value of "123456789" is 0xb90956c775a41001', () => {
  const check = ascii("123456789")
  assert.equal(crc64(check), 0xb90956c775a41001n)
  assert.equal(crc64UpdateJs(0n, check), 0xb90956c775a41001n)
  assert.equal(crc64Bitwise(0n, check), 0xb90956c775a41001n)
  assert.equal(makeWasmCrc64Engine(16).updateBytes(0n, check), 0xb90956c775a41001n)
})

test("empty input leaves the CRC unchanged, starting from 0", () => {
  assert.equal(crc64(new Uint8Array(0)), 0n)
  assert.equal(crc64UpdateJs(0n, new Uint8Array(0)), 0n)
  assert.equal(crc64Update(0x0123456789abcdefn, new Uint8Array(0)), 0x0123456789abcdefn)
  assert.equal(makeWasmCrc64Engine().update(0n, 0), 0n)
})

/** `golden[].outISO` from Go's src/hash/crc64/crc64_test.go (what `crc64.New(crc64.MakeTable(crc64.ISO))` sums to). */
const goGolden: Array<[bigint, string]> = [
  [0x0n, ""],
  [0x3420000000000000n, "a"],
  [0x36c4200000000000n, "ab"],
  [0x3776c42000000000n, "abc"],
  [0x336776c420000000n, "abcd"],
  [0x32d36776c4200000n, "abcde"],
  [0x3002d36776c42000n, "abcdef"],
  [0x31b002d36776c420n, "abcdefg"],
  [0xe21b002d36776c4n, "abcdefgh"],
  [0x8b6e21b002d36776n, "abcdefghi"],
  [0x7f5b6e21b002d367n, "abcdefghij"],
  [0x8ec0e7c835bf9cdfn, "Discard medicine more than two years old."],
  [0xc7db1759e2be5ab4n, "He who has a shady past knows that nice guys finish last."],
  [0x8a79895be1e9c361n, "For every action there is an equal and opposite government program."],
  [0xa7b9d53ea87eb82fn, "There is no reason for any individual to have a computer in their home. -Ken Olsen, 1977"],
  [
    0xd402559dfe9b70cn,
    "The fugacity of a constituent in a mixture of gases at a given temperature is proportional to its mole fraction.  Lewis-Randall Rule",
  ],
  [0xe7fcf1006b503b61n, "This is a test of the emergency broadcast system."],
]

test("Go's golden ISO vectors, one shot and split in half as Go's marshal test does", () => {
  const engine = makeWasmCrc64Engine(32)
  for (const [expected, text] of goGolden) {
    const data = ascii(text)
    const half = data.length >> 1
    assert.equal(crc64(data), expected, text)
    assert.equal(crc64UpdateJs(0n, data), expected, text)
    assert.equal(engine.updateBytes(0n, data), expected, text)
    assert.equal(crc64Update(crc64Update(0n, data.subarray(0, half)), data.subarray(half)), expected, text)
  }
})

test("the wasm tables equal the JavaScript ones", () => {
  const engine = makeWasmCrc64Engine(1)
  // The tables live at the start of the engine's memory, before its buffer.
  const wasmTables = new BigUint64Array(engine.buffer.buffer, 0, 16 * 256)
  assert.deepEqual(Array.from(wasmTables), Array.from(crc64Tables(16)))
})

test("1 MiB of a known pattern: wasm, JavaScript and bitwise agree", () => {
  const data = pattern(1 << 20)
  const expected = crc64UpdateJs(0n, data)
  assert.equal(crc64Bitwise(0n, data.subarray(0, 4096)), crc64UpdateJs(0n, data.subarray(0, 4096)))
  assert.equal(crc64(data), expected)
  const engine = makeWasmCrc64Engine()
  engine.buffer.set(data)
  assert.equal(engine.update(0n, data.length), expected)
  assert.equal(engine.updateBytes(0n, data), expected)
  // A buffer smaller than the data goes through it in pieces.
  assert.equal(makeWasmCrc64Engine(4099).updateBytes(0n, data), expected)
})

test("both slicing widths the generator offers compute the same CRC", () => {
  const data = pattern(100_003, 7)
  const expected = crc64UpdateJs(0n, data)
  for (const slices of [8, 16]) {
    const engine = makeCrc64EngineFromModule(new WebAssembly.Module(crc64WasmModule(slices)), 1 << 16)
    assert.equal(engine.updateBytes(0n, data), expected, `slicing-by-${slices}`)
  }
})

test("every length 0..64 at every offset 0..15 matches the bitwise reference", () => {
  const data = pattern(64 + 16, 3)
  const engine = makeWasmCrc64Engine(256)
  for (let offset = 0; offset < 16; offset++) {
    for (let length = 0; length <= 64; length++) {
      const slice = data.subarray(offset, offset + length)
      const expected = crc64Bitwise(0n, slice)
      assert.equal(crc64UpdateJs(0n, slice), expected, `js offset ${offset} length ${length}`)
      assert.equal(crc64(slice), expected, `crc64 offset ${offset} length ${length}`)
      assert.equal(engine.updateBytes(0n, slice), expected, `updateBytes offset ${offset} length ${length}`)
      // Unaligned inside wasm memory too: a subarray of the engine's own buffer is checksummed in place.
      engine.buffer.set(slice, offset)
      assert.equal(engine.updateBytes(0n, engine.buffer.subarray(offset, offset + length)), expected)
    }
  }
})

test("incremental updates across odd split points equal one shot", () => {
  const data = pattern(10_000, 11)
  const oneShot = crc64(data)
  const engine = makeWasmCrc64Engine(1000)
  for (const splits of [[1], [7, 8, 9], [15, 17, 33, 4097], [9999], [0, 0, 5000]]) {
    let crcWasm = 0n
    let crcJs = 0n
    let crcEngine = 0n
    let from = 0
    for (const to of [...splits, data.length]) {
      const piece = data.subarray(from, to)
      crcWasm = crc64Update(crcWasm, piece)
      crcJs = crc64UpdateJs(crcJs, piece)
      crcEngine = engine.updateBytes(crcEngine, piece)
      from = to
    }
    assert.equal(crcWasm, oneShot, `crc64Update split at ${splits}`)
    assert.equal(crcJs, oneShot, `crc64UpdateJs split at ${splits}`)
    assert.equal(crcEngine, oneShot, `engine split at ${splits}`)
  }
})

test("the engine's update over its buffer equals updateBytes, and continues a running CRC", () => {
  const engine = makeWasmCrc64Engine(4096)
  const first = pattern(4096, 1)
  const second = pattern(1234, 2)
  let crc = 0n
  engine.buffer.set(first)
  crc = engine.update(crc, first.length)
  engine.buffer.set(second)
  crc = engine.update(crc, second.length)
  const whole = new Uint8Array([...first, ...second])
  assert.equal(crc, makeWasmCrc64Engine(100).updateBytes(0n, whole))
  assert.equal(crc, crc64UpdateJs(0n, whole))
  assert.throws(() => engine.update(0n, 4097), RangeError)
  assert.throws(() => engine.update(0n, -1), RangeError)
})

test("running values above 2^63 round-trip through the signed wasm i64", () => {
  const data = pattern(1000, 5)
  const engine = makeWasmCrc64Engine(64)
  for (const start of [0xffffffffffffffffn, 0x8000000000000000n, 0xb90956c775a41001n]) {
    assert.equal(engine.updateBytes(start, data), crc64UpdateJs(start, data))
    assert.equal(crc64Update(start, data), crc64UpdateJs(start, data))
    assert.equal(crc64Update(start, data) >= 0n, true)
  }
})

test("engines are independent: each has its own memory", () => {
  const a = makeWasmCrc64Engine(64)
  const b = makeWasmCrc64Engine(64)
  assert.notEqual(a.buffer.buffer, b.buffer.buffer)
  a.buffer.set(ascii("123456789"))
  b.buffer.fill(0)
  assert.equal(a.update(0n, 9), 0xb90956c775a41001n)
})

test("crc64Bytes is big-endian, as Go's Sum, and crc64FromBytes reads it back", () => {
  const crc = crc64(ascii("123456789"))
  assert.deepEqual(Array.from(crc64Bytes(crc)), [0xb9, 0x09, 0x56, 0xc7, 0x75, 0xa4, 0x10, 0x01])
  assert.equal(crc64FromBytes(crc64Bytes(crc)), crc)
  assert.equal(crc64FromBytes(new Uint8Array(7)), undefined)
  const offset = new Uint8Array(12)
  offset.set(crc64Bytes(crc), 3)
  assert.equal(crc64FromBytes(offset.subarray(3, 11)), crc)
})

test("the committed Crc64Wasm.bytes.ts is what scripts/build-crc64-wasm.ts generates", () => {
  const committed = readFileSync(new URL("../src/crc/Crc64Wasm.bytes.ts", import.meta.url), "utf8")
  assert.equal(committed, crc64WasmSource())
  assert.deepEqual(Array.from(crc64WasmBytes), Array.from(crc64WasmModule()))
  assert.equal(WebAssembly.validate(crc64WasmBytes), true)
})
