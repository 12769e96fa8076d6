// deno-fmt-ignore-file -- the assembly below is laid out one wasm instruction group per line, which fmt would explode.
/**
 * Emits the CRC-64/ISO WebAssembly kernel and writes it, as TypeScript, to
 * `src/crc/Crc64Wasm.bytes.ts`, so the binary we ship always comes from a source
 * we commit and no toolchain (wat2wasm, clang) is needed.
 *
 *   bun scripts/build-crc64-wasm.ts
 *
 * The module has no imports and exports:
 * - `memory`: tables at offset 0 (`slices` tables of 256 i64), input after them;
 * - `init()`: fills the tables, so they are computed rather than embedded;
 * - `update(crc: i64, ptr: i32, len: i32) -> i64`: Go's `crc64.Update`
 *   (pre/post inversion) over `memory[ptr, ptr + len)`.
 *
 * WebAssembly has no carry-less multiply, so the kernel is table driven:
 * slicing-by-N folds N input bytes per step with N independent table loads.
 * Slicing-by-16 beats slicing-by-8 on both V8 (Deno) and JavaScriptCore (Bun);
 * see `scripts/bench-crc64.ts`.
 *
 * The output is a pure function of this file: rerunning rewrites identical bytes.
 *
 * @module
 */
import * as fs from "node:fs"
import process from "node:process"

/** Tables the shipped kernel uses: 16 beats 8 on both engines (measured with `scripts/bench-crc64.ts`). */
export const DEFAULT_SLICES = 16

/** Bytes of one table: 256 entries of 8 bytes. */
export const TABLE_BYTES = 256 * 8

/** The reflected ISO 3309 polynomial as Go writes it (`crc64.ISO`). */
const ISO_POLYNOMIAL = 0xd800000000000000n

type Code = Array<number>

/** Unsigned LEB128, for sizes, counts, indices and memarg offsets. */
const unsignedLeb = (value: number): Code => {
  const out: Code = []
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value !== 0) byte |= 0x80
    out.push(byte)
  } while (value !== 0)
  return out
}

/** Signed LEB128 for `i32.const` / `i64.const` immediates (bigint, so full 64-bit constants fit). */
const signedLeb = (input: number | bigint): Code => {
  let value = BigInt(input)
  const out: Code = []
  for (;;) {
    const byte = Number(value & 0x7fn)
    value >>= 7n
    const done = (value === 0n && (byte & 0x40) === 0) || (value === -1n && (byte & 0x40) !== 0)
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}

const section = (id: number, body: Code): Code => [id, ...unsignedLeb(body.length), ...body]
const vector = (items: Array<Code>): Code => [...unsignedLeb(items.length), ...items.flat()]
const utf8Name = (text: string): Code => [...unsignedLeb(text.length), ...new TextEncoder().encode(text)]

/** Value types. */
const i32 = 0x7f
const i64 = 0x7e

/** Just the opcodes the kernel needs. */
const op = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  voidType: 0x40,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i64Load: 0x29,
  i32Load8U: 0x2d,
  i64Store: 0x37,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Ne: 0x47,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i64And: 0x83,
  i64Xor: 0x85,
  i64Sub: 0x7d,
  i64ShrU: 0x88,
  i32WrapI64: 0xa7,
  i64ExtendI32U: 0xad,
} as const

const get = (local: number): Code => [op.localGet, local]
const set = (local: number): Code => [op.localSet, local]
const i32Constant = (value: number): Code => [op.i32Const, ...signedLeb(value)]
const i64Constant = (value: number | bigint): Code => [op.i64Const, ...signedLeb(value)]
/** `memarg` for naturally aligned 8-byte (align 2^3), 4-byte and 1-byte accesses. */
const load64 = (offset: number): Code => [op.i64Load, 3, ...unsignedLeb(offset)]
const load32 = (offset: number): Code => [op.i32Load, 2, ...unsignedLeb(offset)]
const load8 = (offset: number): Code => [op.i32Load8U, 0, ...unsignedLeb(offset)]
const store64 = (offset: number): Code => [op.i64Store, 3, ...unsignedLeb(offset)]
/** `while (!exit) { body }` where `exit` leaves an i32 condition on the stack. */
const whileNot = (exit: Code, body: Code): Code => [
  op.block, op.voidType, op.loop, op.voidType,
  ...exit, op.brIf, 1,
  ...body,
  op.br, 0,
  op.end, op.end,
]
/** `do { body } while (again)`. */
const doWhile = (body: Code, again: Code): Code => [op.loop, op.voidType, ...body, ...again, op.brIf, 0, op.end]

/** A function body: local declarations (one type per run) then code. */
const functionBody = (locals: Array<[count: number, type: number]>, code: Code): Code => {
  const body = [...vector(locals.map(([count, type]) => [...unsignedLeb(count), type])), ...code, op.end]
  return [...unsignedLeb(body.length), ...body]
}

/**
 * `init()`: table 0 is the bitwise CRC of each byte; table k maps a byte
 * that sits k positions further from the end of the step (Go's `slicing8Table`
 * construction, generalised to `slices` tables).
 */
const initFunction = (slices: number): Code => {
  const BYTE = 0, BIT = 1, CRC = 2, AT = 3
  const byteTable = doWhile([
    ...get(BYTE), op.i64ExtendI32U, ...set(CRC),
    ...i32Constant(8), ...set(BIT),
    ...doWhile([
      // crc = (crc >> 1) ^ (POLY & -(crc & 1))
      ...get(CRC), ...i64Constant(1), op.i64ShrU,
      ...i64Constant(0), ...get(CRC), ...i64Constant(1), op.i64And, op.i64Sub,
      ...i64Constant(BigInt.asIntN(64, ISO_POLYNOMIAL)), op.i64And,
      op.i64Xor, ...set(CRC),
      ...get(BIT), ...i32Constant(-1), op.i32Add, op.localTee, BIT,
    ], []),
    ...get(BYTE), ...i32Constant(3), op.i32Shl, ...get(CRC), ...store64(0),
    ...get(BYTE), ...i32Constant(1), op.i32Add, op.localTee, BYTE,
  ], [...i32Constant(256), op.i32Ne])
  // table[k][n] = (table[k-1][n] >> 8) ^ table[0][table[k-1][n] & 0xff], walking `at` over table k-1.
  const derivedTables = slices > 1
    ? doWhile([
      ...get(AT),
      ...get(AT), ...load64(0), ...i64Constant(8), op.i64ShrU,
      ...get(AT), ...load64(0), op.i32WrapI64, ...i32Constant(0xff), op.i32And, ...i32Constant(3), op.i32Shl,
      ...load64(0),
      op.i64Xor, ...store64(TABLE_BYTES),
      ...get(AT), ...i32Constant(8), op.i32Add, op.localTee, AT,
    ], [...i32Constant((slices - 1) * TABLE_BYTES), op.i32Ne])
    : []
  return functionBody([[2, i32], [1, i64], [1, i32]], [...byteTable, ...derivedTables])
}

/** Pushes `table[slice][(word >>> shift) & 0xff]` for an i32 local `word`, computing the byte offset in one mask. */
const lookupByteOfWord = (word: number, shift: number, slice: number): Code => [
  ...get(word),
  ...(shift >= 3 ? [...i32Constant(shift - 3), op.i32ShrU] : [...i32Constant(3 - shift), op.i32Shl]),
  ...i32Constant(0xff << 3), op.i32And,
  ...load64(slice * TABLE_BYTES),
]

/**
 * `update(crc, ptr, len)`: one slicing step per `slices` bytes, then one byte
 * at a time. The first 8 bytes of a step are XORed with the CRC (little
 * endian, as the reflected CRC consumes them); the rest index tables directly.
 */
const updateFunction = (slices: number): Code => {
  const CRC = 0, PTR = 1, LEN = 2, END = 3, W0 = 4, W1 = 5, W2 = 6, W3 = 7, MIXED = 8
  const invert = [...get(CRC), ...i64Constant(-1), op.i64Xor, ...set(CRC)]
  const lookups: Code = []
  const words = [W0, W1, W2, W3]
  for (let byte = 0; byte < slices; byte++) {
    const slice = slices - 1 - byte
    lookups.push(...lookupByteOfWord(words[byte >> 2]!, (byte & 3) * 8, slice), ...(byte > 0 ? [op.i64Xor] : []))
  }
  const readWords: Code = [
    ...get(CRC), ...get(PTR), ...load64(0), op.i64Xor, op.localTee, MIXED, op.i32WrapI64, ...set(W0),
    ...get(MIXED), ...i64Constant(32), op.i64ShrU, op.i32WrapI64, ...set(W1),
    ...(slices === 16
      ? [...get(PTR), ...load32(8), ...set(W2), ...get(PTR), ...load32(12), ...set(W3)]
      : []),
  ]
  const wide = whileNot([...get(PTR), ...get(END), op.i32GeU], [
    ...readWords,
    ...lookups, ...set(CRC),
    ...get(PTR), ...i32Constant(slices), op.i32Add, ...set(PTR),
  ])
  const narrow = whileNot([...get(PTR), ...get(END), op.i32GeU], [
    ...get(CRC), ...i64Constant(8), op.i64ShrU,
    ...get(CRC), op.i32WrapI64, ...get(PTR), ...load8(0), op.i32Xor, ...i32Constant(0xff), op.i32And,
    ...i32Constant(3), op.i32Shl, ...load64(0),
    op.i64Xor, ...set(CRC),
    ...get(PTR), ...i32Constant(1), op.i32Add, ...set(PTR),
  ])
  return functionBody([[5, i32], [1, i64]], [
    ...invert,
    // end = ptr + (len & -slices): the part the wide loop covers.
    ...get(PTR), ...get(LEN), ...i32Constant(-slices), op.i32And, op.i32Add, ...set(END),
    ...wide,
    ...get(PTR), ...get(LEN), ...i32Constant(slices - 1), op.i32And, op.i32Add, ...set(END),
    ...narrow,
    ...invert,
    ...get(CRC),
  ])
}

/** The module's bytes, for `slices` of 8 or 16 (the shipped one is the default). */
export const crc64WasmModule = (slices: number = DEFAULT_SLICES): Uint8Array<ArrayBuffer> => {
  if (slices !== 8 && slices !== 16) throw new RangeError(`slices must be 8 or 16, got ${slices}`)
  const initType = [0x60, 0, 0]
  const updateType = [0x60, 3, i64, i32, i32, 1, i64]
  const tablePages = 1 // 16 tables of 2 KiB fit one 64 KiB page; the loader grows memory for its buffer.
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector([initType, updateType])),
    ...section(3, vector([[0], [1]])),
    ...section(5, vector([[0x00, ...unsignedLeb(tablePages)]])),
    ...section(7, vector([
      [...utf8Name("memory"), 0x02, 0],
      [...utf8Name("init"), 0x00, 0],
      [...utf8Name("update"), 0x00, 1],
    ])),
    ...section(10, vector([initFunction(slices), updateFunction(slices)])),
  ])
}

/** The TypeScript source that embeds the shipped module. */
export const crc64WasmSource = (): string => {
  const bytes = crc64WasmModule()
  const lines: Array<string> = []
  for (let i = 0; i < bytes.length; i += 24) lines.push("  " + Array.from(bytes.subarray(i, i + 24)).join(", ") + ",")
  return [
    "// GENERATED FILE, do not edit: written by scripts/build-crc64-wasm.ts (`bun scripts/build-crc64-wasm.ts`).",
    "// deno-fmt-ignore-file",
    `/** The CRC-64/ISO slicing-by-${DEFAULT_SLICES} WebAssembly module (${bytes.length} bytes; tables are built by its \`init\`). */`,
    "export const crc64WasmBytes: Uint8Array<ArrayBuffer> = new Uint8Array([",
    ...lines,
    "])",
    "",
  ].join("\n")
}

if (import.meta.main) {
  const target = new URL("../src/crc/Crc64Wasm.bytes.ts", import.meta.url)
  fs.writeFileSync(target, crc64WasmSource())
  process.stderr.write(`wrote ${target.pathname} (${crc64WasmModule().length} bytes of wasm)\n`)
}
