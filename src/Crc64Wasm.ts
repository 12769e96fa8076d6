/**
 * CRC-64/ISO in WebAssembly: slicing-by-16 over 64-bit tables, about twice
 * the speed of the best plain JavaScript. Each engine owns its instance and
 * memory (engines live in different worker threads) and exposes an input
 * buffer inside that memory, so file data is read straight into it.
 *
 * @example
 * ```ts
 * const engine = makeCrc64Engine()
 * const n = handle.read(engine.buffer, 0, engine.capacity)
 * crc = engine.update(crc, n)
 * ```
 * @module
 */
import { crc64Tables } from "./Crc64.ts"
import { crc64WasmBytes } from "./Crc64Wasm.bytes.ts"

/** A CRC-64 engine whose input buffer lives in wasm memory. */
export interface Crc64Engine {
  /** View of wasm memory, `capacity` bytes, where callers put data to checksum. */
  readonly buffer: Uint8Array
  readonly capacity: number
  /** Continues `crc` over `buffer[0, length)`. */
  update(crc: bigint, length: number): bigint
  /** Continues `crc` over any bytes (copied through `buffer` in pieces). */
  updateBytes(crc: bigint, data: Uint8Array): bigint
}

const SLICES = 16
const TABLES_BYTES = SLICES * 256 * 8
const PAGE = 65536

let compiled: WebAssembly.Module | undefined

/** Makes an engine with an input buffer of `capacity` bytes (default 1 MiB). */
export const makeCrc64Engine = (capacity: number = 1 << 20): Crc64Engine => {
  compiled ??= new WebAssembly.Module(crc64WasmBytes as Uint8Array<ArrayBuffer>)
  const instance = new WebAssembly.Instance(compiled, {})
  const memory = instance.exports.memory as WebAssembly.Memory
  const update = instance.exports.update as (crc: bigint, ptr: number, length: number) => bigint
  const needed = Math.ceil((TABLES_BYTES + capacity) / PAGE)
  const have = memory.buffer.byteLength / PAGE
  if (needed > have) memory.grow(needed - have)
  const tables = new BigUint64Array(memory.buffer, 0, SLICES * 256)
  tables.set(crc64Tables(SLICES))
  const buffer = new Uint8Array(memory.buffer, TABLES_BYTES, capacity)
  return {
    buffer,
    capacity,
    update: (crc, length) => update(BigInt.asIntN(64, crc), TABLES_BYTES, length) & 0xffffffffffffffffn,
    updateBytes: (crc, data) => {
      for (let at = 0; at < data.length; at += capacity) {
        const piece = data.subarray(at, Math.min(at + capacity, data.length))
        buffer.set(piece)
        crc = update(BigInt.asIntN(64, crc), TABLES_BYTES, piece.length) & 0xffffffffffffffffn
      }
      return crc
    },
  }
}
