/**
 * The native CRC-64/ISO kernel (PCLMULQDQ, `src/crc/Crc64Native.ts`) against the
 * plain JavaScript reference, the engine chooser, and the generated files.
 * Where the CPU has PCLMULQDQ and SSE4.1 (x86_64 Linux), the native engine
 * must load: a chooser that silently fell back to WebAssembly fails here.
 *
 * @module
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { spawnSync } from "node:child_process"
import process from "node:process"
import { test } from "node:test"
import fc from "fast-check"
import { crc64, crc64UpdateJs } from "../src/crc/Crc64.ts"
import { crc64EngineKind, makeCrc64Engine } from "../src/crc/Crc64Engine.ts"
import { makeNativeCrc64Engine, nativeCrc64Available, nativeCrc64Unavailable } from "../src/crc/Crc64Native.ts"
import {
  crc64NativeBlob,
  crc64NativeEntries,
  crc64NativeSourceSha256,
  crc64NativeToolchain,
} from "../src/crc/Crc64Native.bytes.ts"
import {
  buildCrc64Native,
  CRC64_NATIVE_HEADER,
  crc64ClmulConstantsHeader,
  crc64NativeSourceHash,
  crc64NativeToolchain as currentToolchain,
} from "../scripts/build-crc64-native.ts"

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Whether this machine can run the kernel, asked independently of the kernel's own cpuid check. */
const cpuCanRunKernel = (): boolean => {
  if (process.platform !== "linux" || process.arch !== "x64") return false
  const flags = readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1]?.split(/\s+/) ?? []
  return flags.includes("pclmulqdq") && flags.includes("sse4_1")
}
const expectNative = cpuCanRunKernel() && process.env["CAS_MIGRATOR_CRC"] !== "wasm"
const skipNative = expectNative ? false : "the native kernel cannot run here"

/** A seeded generator (mulberry32), so a failure names a reproducible case. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), seed | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const randomBytes = (length: number, next: () => number): Uint8Array => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256)
  return out
}
const randomCrc = (next: () => number): bigint =>
  (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32))

const native = (capacity: number) => {
  const engine = makeNativeCrc64Engine(capacity)
  assert.ok(engine !== undefined, `no native engine: ${nativeCrc64Unavailable()}`)
  return engine
}

test("the engine chooser gives the native engine where the CPU has PCLMULQDQ and SSE4.1", { skip: skipNative }, () => {
  assert.equal(nativeCrc64Unavailable(), undefined)
  assert.equal(nativeCrc64Available(), true)
  assert.equal(crc64EngineKind(), "native")
  assert.equal(makeCrc64Engine().kind, "native")
})

test("a worker thread gets the native engine too", { skip: skipNative }, async () => {
  const worker = new Worker(new URL("./support/crc64-engine-kind-worker.ts", import.meta.url).href, { type: "module" })
  try {
    const answer = await new Promise<{ kind: string; crc: string; why: string | undefined }>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<{ kind: string; crc: string; why: string | undefined }>) =>
        resolve(event.data)
      worker.onerror = (event: ErrorEvent) => reject(new Error(event.message))
    })
    assert.deepEqual(answer, { kind: "native", crc: "b90956c775a41001", why: undefined })
  } finally {
    worker.terminate()
  }
})

test("CAS_MIGRATOR_CRC=wasm makes the chooser give the WebAssembly engine", () => {
  const before = process.env["CAS_MIGRATOR_CRC"]
  process.env["CAS_MIGRATOR_CRC"] = "wasm"
  try {
    assert.equal(makeCrc64Engine(64).kind, "wasm")
    assert.equal(crc64EngineKind(), "wasm")
    assert.equal(makeNativeCrc64Engine(64), undefined)
    assert.equal(nativeCrc64Unavailable(), "CAS_MIGRATOR_CRC=wasm")
    assert.equal(makeCrc64Engine(64).updateBytes(0n, ascii("123456789")), 0xb90956c775a41001n)
  } finally {
    if (before === undefined) delete process.env["CAS_MIGRATOR_CRC"]
    else process.env["CAS_MIGRATOR_CRC"] = before
  }
  if (expectNative) assert.equal(makeCrc64Engine(64).kind, "native")
})

test('native: the check value of "123456789" is 0xb90956c775a41001, through the buffer and in place', {
  skip: skipNative,
}, () => {
  const engine = native(16)
  const check = ascii("123456789")
  assert.equal(engine.updateBytes(0n, check), 0xb90956c775a41001n)
  engine.buffer.set(check)
  assert.equal(engine.update(0n, check.length), 0xb90956c775a41001n)
  // A small array V8 may keep on its heap.
  assert.equal(
    engine.updateBytes(0n, Uint8Array.of(0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39)),
    0xb90956c775a41001n,
  )
  assert.equal(engine.update(0x0123456789abcdefn, 0), 0x0123456789abcdefn)
  assert.equal(engine.updateBytes(0x0123456789abcdefn, new Uint8Array(0)), 0x0123456789abcdefn)
  assert.throws(() => engine.update(0n, 17), RangeError)
  assert.throws(() => engine.update(0n, -1), RangeError)
  assert.throws(() => engine.update(0n, 1.5), RangeError)
})

test("native: every length 0..600 at random offsets and start values equals the JavaScript reference", {
  skip: skipNative,
}, () => {
  const next = random(600)
  const engine = native(1024)
  const pool = randomBytes(600 + 64, next)
  for (let length = 0; length <= 600; length++) {
    for (let round = 0; round < 3; round++) {
      const offset = round === 0 ? 0 : Math.floor(next() * 64)
      const start = round === 0 ? 0n : randomCrc(next)
      const data = pool.subarray(offset, offset + length)
      const expected = crc64UpdateJs(start, data)
      const text = `length ${length} offset ${offset} start ${start.toString(16)}`
      assert.equal(engine.updateBytes(start, data), expected, `updateBytes ${text}`)
      engine.buffer.set(data)
      assert.equal(engine.update(start, length), expected, `update ${text}`)
      // Unaligned inside the engine's own buffer.
      engine.buffer.set(data, offset)
      assert.equal(
        engine.updateBytes(start, engine.buffer.subarray(offset, offset + length)),
        expected,
        `in place ${text}`,
      )
    }
  }
})

test("native: random buffers up to 1 MiB at any offset and start value (fast-check)", { skip: skipNative }, () => {
  const engine = native(1 << 20)
  fc.assert(
    fc.property(
      // fast-check picks the shape (and shrinks it); a seeded generator fills the bytes, which is much faster.
      fc.integer({ min: 0, max: 1 << 20 }),
      fc.nat(63),
      fc.integer(),
      fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }),
      (length, skip, seed, start) => {
        const data = randomBytes(length + skip, random(seed)).subarray(skip)
        const expected = crc64UpdateJs(start, data)
        assert.equal(engine.updateBytes(start, data), expected)
        engine.buffer.set(data)
        assert.equal(engine.update(start, data.length), expected)
      },
    ),
    { numRuns: 60 },
  )
})

test(
  "native: 16 MiB of random bytes, and a SharedArrayBuffer's bytes (the CRC lane's slots)",
  { skip: skipNative },
  () => {
    const next = random(16)
    const engine = native(1 << 20)
    const data = randomBytes(16 << 20, next)
    const expected = crc64UpdateJs(0n, data)
    assert.equal(engine.updateBytes(0n, data), expected)
    let crc = 0n
    for (let at = 0; at < data.length; at += engine.capacity) {
      engine.buffer.set(data.subarray(at, at + engine.capacity))
      crc = engine.update(crc, Math.min(engine.capacity, data.length - at))
    }
    assert.equal(crc, expected)
    const shared = new Uint8Array(new SharedArrayBuffer(100_003))
    shared.set(data.subarray(0, shared.length))
    assert.equal(engine.updateBytes(0n, shared.subarray(5)), crc64UpdateJs(0n, data.subarray(5, shared.length)))
  },
)

test("native: update(update(0, a), b) is the CRC of a ++ b (fast-check)", { skip: skipNative }, () => {
  const engine = native(4096)
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000, size: "max" }),
      fc.uint8Array({ maxLength: 3000, size: "max" }),
      (a, b) => {
        const joined = new Uint8Array(a.length + b.length)
        joined.set(a)
        joined.set(b, a.length)
        assert.equal(engine.updateBytes(engine.updateBytes(0n, a), b), engine.updateBytes(0n, joined))
        assert.equal(engine.updateBytes(0n, joined), crc64UpdateJs(0n, joined))
      },
    ),
    { numRuns: 300 },
  )
})

test("native: crc64 (the shared engine) agrees with the JavaScript reference", { skip: skipNative }, () => {
  const data = randomBytes(70_001, random(7))
  assert.equal(crc64(data), crc64UpdateJs(0n, data))
})

test("the committed constants header is what scripts/build-crc64-native.ts computes", () => {
  assert.equal(readFileSync(CRC64_NATIVE_HEADER, "utf8"), crc64ClmulConstantsHeader())
})

test("the committed Crc64Native.bytes.ts was built from the committed C source and header", () => {
  assert.equal(crc64NativeSourceSha256, crc64NativeSourceHash(), "rerun `bun scripts/build-crc64-native.ts`")
  assert.ok(crc64NativeEntries.update < crc64NativeBlob.length)
  assert.ok(crc64NativeEntries.updateCompare < crc64NativeBlob.length)
  assert.ok(crc64NativeEntries.supported < crc64NativeBlob.length)
})

/** The toolchain that made the committed blob, when it is here to rebuild it. */
const sameToolchain = (): boolean => {
  const gcc = spawnSync("gcc", ["--version"])
  const ld = spawnSync("ld", ["--version"])
  return gcc.status === 0 && ld.status === 0 && currentToolchain() === crc64NativeToolchain
}

test(
  "rebuilding the kernel with the same toolchain gives the committed bytes",
  { skip: sameToolchain() ? false : `needs ${crc64NativeToolchain}` },
  () => {
    const build = buildCrc64Native()
    assert.deepEqual(build.entries, crc64NativeEntries)
    assert.deepEqual(Array.from(build.blob), Array.from(crc64NativeBlob))
  },
)
