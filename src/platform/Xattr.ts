/**
 * `lgetxattr(2)` for Bun and Deno (neither has an xattr API), through each
 * runtime's FFI to the C library. Docker's archiver kept one xattr,
 * `security.capability`, and compared it when diffing two roots.
 *
 * @module
 */
import { openLibc } from "./Libc.ts"

type Lgetxattr = (path: Uint8Array, name: Uint8Array, value: Uint8Array) => number

/** The slice of `bun:ffi` used here. */
interface BunFfi {
  readonly FFIType: { readonly ptr: number; readonly u64: number; readonly i64: number }
  dlopen(path: string, symbols: Record<string, { args: ReadonlyArray<number>; returns: number }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => number | bigint>
  }
}

/** The slice of Deno's FFI used here. */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { parameters: ReadonlyArray<string>; result: string }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => number | bigint>
  }
}

const load = (): Lgetxattr => {
  const deno = (globalThis as { readonly Deno?: DenoFfi }).Deno
  if (deno !== undefined) {
    const libc = openLibc((name) =>
      deno.dlopen(name, { lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" } })
    )
    return (path, name, value) => Number(libc.symbols.lgetxattr!(path, name, value, BigInt(value.length)))
  }
  const require = (import.meta as { readonly require?: (id: string) => unknown }).require
  if (require === undefined) throw new Error("Cannot read xattrs: neither Bun nor Deno FFI is available")
  const ffi = require("bun:ffi") as BunFfi
  const { ptr, u64, i64 } = ffi.FFIType
  const libc = openLibc((name) => ffi.dlopen(name, { lgetxattr: { args: [ptr, ptr, ptr, u64], returns: i64 } }))
  return (path, name, value) => Number(libc.symbols.lgetxattr!(path, name, value, value.length))
}

let lgetxattrCall: Lgetxattr | undefined
/** Linux caps an xattr value at 64 KiB, so one buffer of that size never gets ERANGE. */
const value = new Uint8Array(65536)
const cString = (bytes: Uint8Array): Uint8Array => {
  const out = new Uint8Array(bytes.length + 1)
  out.set(bytes)
  return out
}

/** The value of xattr `name` of `path` (not following a symlink), or `undefined` (absent or unreadable, as Docker ignored errors). */
export const lgetxattr = (path: Uint8Array, name: string): Uint8Array | undefined => {
  lgetxattrCall ??= load()
  const length = lgetxattrCall(cString(path), cString(new TextEncoder().encode(name)), value)
  return length < 0 ? undefined : value.slice(0, length)
}
