/**
 * Builds the native CRC-64/ISO kernel (PCLMULQDQ folding, x86_64) from its
 * committed C source and writes it, as TypeScript, to
 * `src/crc/Crc64Native.bytes.ts`, so the binary we ship always comes from a source
 * we commit, and neither CI nor a user needs a compiler:
 *
 *   bun scripts/build-crc64-native.ts
 *
 * Steps:
 * 1. computes the folding and Barrett constants with BigInt polynomial
 *    arithmetic over GF(2) and writes `scripts/native/crc64-clmul-constants.h`
 *    (a test checks the committed header is what this computes);
 * 2. compiles `scripts/native/crc64-clmul.c` with gcc, freestanding
 *    (`-ffreestanding -nostdlib -fno-stack-protector`, no unwind tables);
 * 3. links it with `ld` and a linker script that lays `.text` and `.rodata`
 *    out as one section at address 0, and takes that section's bytes with
 *    `objcopy -O binary`: one position-independent blob whose constants are
 *    read RIP-relative, entry points at the offsets `nm` gives;
 * 4. refuses the result if the object needs anything from outside (an
 *    undefined symbol such as `memcpy`) or has a relocation that is not
 *    PC-relative (an absolute address or a GOT entry would not survive being
 *    copied to an arbitrary address);
 * 5. writes `src/crc/Crc64Native.bytes.ts`: the blob, the entry offsets, the
 *    SHA-256 of the two sources (a test checks the committed file matches the
 *    sources) and the toolchain that built it.
 *
 * The output is a pure function of the sources and the toolchain: rerunning
 * with the same gcc and binutils rewrites identical bytes (Debian 12's gcc
 * 12.2.0 and binutils 2.40 made the committed file; a test rebuilds and
 * compares when that toolchain is present). Another compiler version may emit
 * different, equally correct code.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

/** P(x) = x^64 + x^4 + x^3 + x + 1, normal form (bit k is the coefficient of x^k); Go's `crc64.ISO` is its reflection. */
const ISO_POLYNOMIAL_NORMAL = (1n << 64n) | 0x1bn

const sourceDirectory = new URL("./native/", import.meta.url)
export const CRC64_NATIVE_SOURCE = new URL("crc64-clmul.c", sourceDirectory)
export const CRC64_NATIVE_HEADER = new URL("crc64-clmul-constants.h", sourceDirectory)
const GENERATED = new URL("../src/crc/Crc64Native.bytes.ts", import.meta.url)

const degree = (a: bigint): number => a.toString(2).length - 1

/** a mod P over GF(2), by shift-and-XOR. */
const polyMod = (a: bigint, p: bigint): bigint => {
  const dp = degree(p)
  while (a !== 0n && degree(a) >= dp) a ^= p << BigInt(degree(a) - dp)
  return a
}

/** floor(a / P) over GF(2), by long division. */
const polyDiv = (a: bigint, p: bigint): bigint => {
  const dp = degree(p)
  let quotient = 0n
  while (a !== 0n && degree(a) >= dp) {
    const shift = BigInt(degree(a) - dp)
    quotient |= 1n << shift
    a ^= p << shift
  }
  return quotient
}

/** A polynomial of degree < 64 in the reflected form: bit i stands for x^(63-i). */
const reflect64 = (a: bigint): bigint => {
  if (a >> 64n !== 0n) throw new RangeError("degree >= 64 does not fit a reflected word")
  let out = 0n
  for (let i = 0n; i < 64n; i++) if ((a >> i) & 1n) out |= 1n << (63n - i)
  return out
}

const xPowMod = (n: number): bigint => polyMod(1n << BigInt(n), ISO_POLYNOMIAL_NORMAL)

/**
 * The kernel's constants, reflected (see the comment at the top of
 * `crc64-clmul.c` for what each is for). A carry-less product of two
 * reflected words comes out one degree short in the 128-bit register, so each
 * multiplier is one degree lower than the power it stands for.
 */
export const crc64ClmulConstants = (): Array<readonly [name: string, value: bigint]> => {
  const out: Array<readonly [string, bigint]> = []
  for (let blocks = 1; blocks <= 8; blocks++) {
    const bits = 128 * blocks
    // A block D bits before the end: its high-degree half times x^(D+64), its low-degree half times x^D.
    out.push([`CRC64_FOLD_${bits}_HIGH`, reflect64(xPowMod(bits + 63))])
    out.push([`CRC64_FOLD_${bits}_LOW`, reflect64(xPowMod(bits - 1))])
  }
  // Barrett: floor(x^128 / P) = x^64 + mu'; floor(x^127 / P) drops mu's constant term and the missing degree.
  out.push(["CRC64_BARRETT_MU", reflect64(polyDiv(1n << 127n, ISO_POLYNOMIAL_NORMAL))])
  // floor(P / x): P without its constant term, one degree down (q * floor(P / x) * x = q * P + q).
  out.push(["CRC64_BARRETT_POLY", reflect64(ISO_POLYNOMIAL_NORMAL >> 1n)])
  return out
}

/** The header the C source includes. */
export const crc64ClmulConstantsHeader = (): string =>
  [
    "/* GENERATED FILE, do not edit: written by scripts/build-crc64-native.ts from BigInt",
    "   polynomial arithmetic over GF(2) with P(x) = x^64 + x^4 + x^3 + x + 1 (CRC-64/ISO).",
    "   FOLD_<D>_HIGH = x^(D+63) mod P, FOLD_<D>_LOW = x^(D-1) mod P, BARRETT_MU = floor(x^127 / P),",
    "   BARRETT_POLY = floor(P / x); all bit-reversed (bit i stands for x^(63-i)). */",
    "#pragma once",
    ...crc64ClmulConstants().map(([name, value]) => `#define ${name} 0x${value.toString(16).padStart(16, "0")}ull`),
    "",
  ].join("\n")

const sha256 = (...parts: ReadonlyArray<string | Uint8Array>): string => {
  const hash = createHash("sha256")
  for (const part of parts) hash.update(part)
  return hash.digest("hex")
}

/** SHA-256 of the C source and the constants header as committed: what the generated file was built from. */
export const crc64NativeSourceHash = (): string =>
  sha256(fs.readFileSync(CRC64_NATIVE_SOURCE), fs.readFileSync(CRC64_NATIVE_HEADER))

const run = (command: string, args: ReadonlyArray<string>, cwd?: string): string => {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" })
  if (result.error !== undefined) throw new Error(`${command}: ${result.error.message}`)
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status}:\n${result.stderr}`)
  }
  return result.stdout
}

/** The first line of `gcc --version` and of `ld --version`: what makes the blob, recorded beside it. */
export const crc64NativeToolchain = (): string =>
  [run("gcc", ["--version"]), run("ld", ["--version"])].map((text) => text.split("\n")[0]!.trim()).join("; ")

const GCC_FLAGS = [
  "-O2",
  "-fPIC",
  "-ffreestanding",
  "-fno-stack-protector",
  "-nostdlib",
  "-mpclmul",
  "-msse4.1",
  "-fvisibility=hidden",
  "-fno-plt",
  "-fno-asynchronous-unwind-tables",
  "-fno-unwind-tables",
  // endbr64 at the entries: a no-op without CET, and indirect calls stay valid where IBT is enforced.
  "-fcf-protection=branch",
  "-Wall",
  "-Wextra",
  "-Werror",
]

/** One output section at 0: the code, then its constants; everything else (notes, comments) dropped. */
const LINKER_SCRIPT = `SECTIONS {
  . = 0;
  .blob : { *(.text .text.*) *(.rodata .rodata.* .rodata.cst*) }
  /DISCARD/ : { *(.comment) *(.note .note.*) *(.eh_frame .eh_frame_hdr) *(.data .data.* .bss .bss.*) }
}
`

/** Relocations a blob at any address can have: resolved PC-relative at link time. */
const RELATIVE_RELOCATIONS = new Set(["R_X86_64_PC32", "R_X86_64_PLT32"])

export interface Crc64NativeBuild {
  readonly blob: Uint8Array
  readonly entries: { readonly update: number; readonly updateCompare: number; readonly supported: number }
}

/** Compiles and links the kernel in a scratch directory (removed after); throws if it is not a self-contained blob. */
export const buildCrc64Native = (): Crc64NativeBuild => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "crc64-native-"))
  try {
    const object = path.join(scratch, "crc64.o")
    const linked = path.join(scratch, "crc64.elf")
    const blobFile = path.join(scratch, "crc64.bin")
    fs.writeFileSync(path.join(scratch, "blob.ld"), LINKER_SCRIPT)
    // Compiled from the source's own directory, so the header is found and no absolute path matters.
    run("gcc", [...GCC_FLAGS, "-c", "crc64-clmul.c", "-o", object], sourceDirectory.pathname)
    const undefinedSymbols = run("nm", ["-u", object]).trim()
    if (undefinedSymbols !== "") throw new Error(`the kernel needs symbols from outside:\n${undefinedSymbols}`)
    for (const line of run("readelf", ["-rW", object]).split("\n")) {
      const type = line.trim().split(/\s+/)[2]
      if (type !== undefined && type.startsWith("R_X86_64") && !RELATIVE_RELOCATIONS.has(type)) {
        throw new Error(`the kernel has a relocation that is not PC-relative: ${line.trim()}`)
      }
    }
    run("ld", ["-T", "blob.ld", "--no-dynamic-linker", "-static", "-e", "0", "-o", linked, object], scratch)
    const sections = run("readelf", ["-SW", linked])
    if (/\.(got|plt|data|bss)\b/.test(sections)) {
      throw new Error(`the linked kernel has a GOT, PLT or data:\n${sections}`)
    }
    run("objcopy", ["-O", "binary", "-j", ".blob", linked, blobFile])
    const symbols = new Map<string, number>()
    for (const line of run("nm", [linked]).split("\n")) {
      const [address, , name] = line.trim().split(/\s+/)
      if (address !== undefined && name !== undefined) symbols.set(name, Number.parseInt(address, 16))
    }
    const entry = (name: string): number => {
      const offset = symbols.get(name)
      if (offset === undefined) throw new Error(`no ${name} in the linked kernel`)
      return offset
    }
    const blob = new Uint8Array(fs.readFileSync(blobFile))
    const entries = {
      update: entry("crc64_iso_update"),
      updateCompare: entry("crc64_iso_update_compare"),
      supported: entry("crc64_iso_supported"),
    }
    for (const offset of Object.values(entries)) {
      if (offset >= blob.length) throw new Error(`entry ${offset} outside the ${blob.length}-byte blob`)
    }
    return { blob, entries }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}

/** The TypeScript source that embeds a build. */
export const crc64NativeSource = (build: Crc64NativeBuild, sourceHash: string, toolchain: string): string => {
  const lines: Array<string> = []
  for (let i = 0; i < build.blob.length; i += 24) {
    lines.push("  " + Array.from(build.blob.subarray(i, i + 24)).join(", ") + ",")
  }
  return [
    "// GENERATED FILE, do not edit: written by scripts/build-crc64-native.ts (`bun scripts/build-crc64-native.ts`)",
    "// from scripts/native/crc64-clmul.c and crc64-clmul-constants.h.",
    "// deno-fmt-ignore-file",
    `/** The CRC-64/ISO PCLMULQDQ kernel for x86_64 Linux: ${build.blob.length} bytes of position-independent code and constants. */`,
    "export const crc64NativeBlob: Uint8Array<ArrayBuffer> = new Uint8Array([",
    ...lines,
    "])",
    "",
    "/**",
    " * Offsets in the blob of `uint64_t crc64_iso_update(uint64_t crc, const uint8_t *p, size_t n)`,",
    " * `int crc64_iso_update_compare(const void *call, const void *p)` (the same as a bsearch comparator)",
    " * and `int crc64_iso_supported(void)`.",
    " */",
    `export const crc64NativeEntries = { update: ${build.entries.update}, updateCompare: ${build.entries.updateCompare}, supported: ${build.entries.supported} } as const`,
    "",
    "/** SHA-256 of the C source and the constants header it was built from. */",
    `export const crc64NativeSourceSha256 = "${sourceHash}"`,
    "",
    "/** The toolchain that built it (`gcc --version`; `ld --version`). */",
    `export const crc64NativeToolchain = ${JSON.stringify(toolchain)}`,
    "",
  ].join("\n")
}

if (import.meta.main) {
  fs.writeFileSync(CRC64_NATIVE_HEADER, crc64ClmulConstantsHeader())
  const build = buildCrc64Native()
  fs.writeFileSync(GENERATED, crc64NativeSource(build, crc64NativeSourceHash(), crc64NativeToolchain()))
  process.stderr.write(
    `wrote ${CRC64_NATIVE_HEADER.pathname} and ${GENERATED.pathname} (${build.blob.length} bytes of x86_64 code and constants)\n`,
  )
}
