/**
 * Throughput of the CRC-64/ISO implementations on the runtime it runs on, one
 * thread: plain JavaScript slicing-by-8, the WebAssembly kernel at both widths
 * the generator offers (the shipped one is slicing-by-16) and the native
 * PCLMULQDQ kernel (where it loads). Each pushes ~2 GiB through a 1 MiB
 * buffer, after a warm-up long enough for the optimising tiers. Then the cost
 * of one `update` call at file-like sizes (most files of a layer are small),
 * WebAssembly against native.
 *
 *   bun scripts/bench-crc64.ts
 *   deno run -A scripts/bench-crc64.ts
 *
 * @module
 */
import process from "node:process"
import { crc64UpdateJs } from "../src/crc/Crc64.ts"
import type { Crc64Engine } from "../src/crc/Crc64Engine.ts"
import { makeNativeCrc64Engine, nativeCrc64Unavailable } from "../src/crc/Crc64Native.ts"
import { makeCrc64EngineFromModule, makeWasmCrc64Engine } from "../src/crc/Crc64Wasm.ts"
import { crc64WasmModule, DEFAULT_SLICES } from "./build-crc64-wasm.ts"

const BUFFER_BYTES = 1 << 20
const TOTAL_BYTES = 2 ** 31
const WARM_UP_BYTES = 2 ** 27

/** A way to continue a CRC over the benchmark buffer. */
interface Contender {
  readonly name: string
  readonly data: Uint8Array
  readonly update: (crc: bigint) => bigint
}

/** Fills with varied bytes so no table entry stays cold. */
const fillPattern = (target: Uint8Array): void => {
  for (let i = 0; i < target.length; i++) target[i] = Math.imul(i, 2654435761) >>> 24
}

const engineContender = (name: string, engine: Crc64Engine): Contender => {
  fillPattern(engine.buffer)
  return { name, data: engine.buffer, update: (crc) => engine.update(crc, BUFFER_BYTES) }
}

const wasmContender = (name: string, slices: number | undefined): Contender =>
  engineContender(
    name,
    slices === undefined
      ? makeWasmCrc64Engine(BUFFER_BYTES)
      : makeCrc64EngineFromModule(new WebAssembly.Module(crc64WasmModule(slices)), BUFFER_BYTES),
  )

const nativeEngine = makeNativeCrc64Engine(BUFFER_BYTES)

const jsData = new Uint8Array(BUFFER_BYTES)
fillPattern(jsData)
const contenders: Array<Contender> = [
  { name: "JS slicing-by-8", data: jsData, update: (crc) => crc64UpdateJs(crc, jsData) },
  wasmContender("wasm slicing-by-8", 8),
  wasmContender(`wasm slicing-by-16`, 16),
  wasmContender(`wasm shipped (slicing-by-${DEFAULT_SLICES}, makeWasmCrc64Engine)`, undefined),
  ...(nativeEngine === undefined ? [] : [engineContender("native PCLMULQDQ (makeNativeCrc64Engine)", nativeEngine)]),
]

const runtime = "Bun" in globalThis
  ? `Bun ${process.versions["bun"]}`
  : "Deno" in globalThis
  ? `Deno ${process.versions["deno"]}`
  : `Node ${process.versions.node}`
console.log(`${runtime}: ${TOTAL_BYTES / 2 ** 30} GiB through a ${BUFFER_BYTES / 2 ** 20} MiB buffer`)

const expected = crc64UpdateJs(0n, jsData)
for (const contender of contenders) {
  if (contender.update(0n) !== expected) throw new Error(`${contender.name} computes a wrong CRC`)
  let crc = 0n
  for (let done = 0; done < WARM_UP_BYTES; done += BUFFER_BYTES) crc = contender.update(crc)
  const started = performance.now()
  for (let done = 0; done < TOTAL_BYTES; done += BUFFER_BYTES) crc = contender.update(crc)
  const seconds = (performance.now() - started) / 1000
  const megabytesPerSecond = TOTAL_BYTES / 1e6 / seconds
  console.log(
    `${contender.name.padEnd(52)} ${megabytesPerSecond.toFixed(0).padStart(6)} MB/s  (crc ${crc.toString(16)})`,
  )
}
if (nativeEngine === undefined) console.log(`native PCLMULQDQ: not loaded here (${nativeCrc64Unavailable()})`)

/** Per call at file-like sizes: ns per `update`, and what that is per byte. */
const CALL_SIZES = [64, 1024, 4096, 16384]
const CALL_BYTES = 2 ** 28
const perCall: Array<[string, Crc64Engine]> = [["wasm shipped", makeWasmCrc64Engine(BUFFER_BYTES)]]
if (nativeEngine !== undefined) perCall.push(["native", nativeEngine])
console.log(`\nOne update call (${CALL_BYTES / 2 ** 20} MiB in calls of each size):`)
for (const [name, engine] of perCall) {
  fillPattern(engine.buffer)
  const cells: Array<string> = []
  for (const size of CALL_SIZES) {
    const calls = CALL_BYTES / size
    let crc = 0n
    for (let i = 0; i < calls / 8; i++) crc = engine.update(crc, size)
    const started = performance.now()
    for (let i = 0; i < calls; i++) crc = engine.update(crc, size)
    const nanoseconds = ((performance.now() - started) * 1e6) / calls
    cells.push(`${size} B: ${nanoseconds.toFixed(0)} ns (${(nanoseconds / size).toFixed(2)} ns/B)`)
  }
  console.log(`${name.padEnd(14)} ${cells.join("   ")}`)
}
