/**
 * The CRC-64/ISO engine every hot loop owns: the native PCLMULQDQ kernel
 * (`Crc64Native.ts`) where it loads, else the WebAssembly one
 * (`Crc64Wasm.ts`). `CAS_MIGRATOR_CRC=wasm` forces WebAssembly.
 *
 * @example
 * ```ts
 * const engine = makeCrc64Engine()
 * const n = handle.read(engine.buffer, 0, engine.capacity)
 * crc = engine.update(crc, n)
 * ```
 * @module
 */
import { makeNativeCrc64Engine, nativeCrc64Available } from "./Crc64Native.ts"
import { makeWasmCrc64Engine } from "./Crc64Wasm.ts"

/** A CRC-64 engine with an input buffer that callers read file data straight into. */
export interface Crc64Engine {
  /** Which kernel computes it. */
  readonly kind: "native" | "wasm"
  /** `capacity` bytes where callers put data to checksum. */
  readonly buffer: Uint8Array
  readonly capacity: number
  /** Continues `crc` over `buffer[0, length)`. */
  update(crc: bigint, length: number): bigint
  /** Continues `crc` over any bytes. */
  updateBytes(crc: bigint, data: Uint8Array): bigint
}

export const DEFAULT_CRC64_CAPACITY = 1 << 20

/** The kernel `makeCrc64Engine` gives in this thread: "native" unless it cannot load here or `CAS_MIGRATOR_CRC=wasm`. */
export const crc64EngineKind = (): Crc64Engine["kind"] => nativeCrc64Available() ? "native" : "wasm"

/** Makes an engine with an input buffer of `capacity` bytes (default 1 MiB): native where it loads, else WebAssembly. */
export const makeCrc64Engine = (capacity: number = DEFAULT_CRC64_CAPACITY): Crc64Engine =>
  makeNativeCrc64Engine(capacity) ?? makeWasmCrc64Engine(capacity)
