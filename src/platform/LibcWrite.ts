/**
 * Creating files by raw byte path through the C library, on Bun and Deno.
 * Unpacking a layer needs what `node:fs` lacks (`mknod`, `lsetxattr`,
 * nanosecond `utimensat` on symlinks) and names that are not UTF-8 (Deno's
 * `node:fs` cannot express them), so every write of the layer applier goes
 * through here; a failure throws `SystemCallError` with the errno name.
 *
 * @module
 */
import { openLibc } from "./Libc.ts"
import { SystemCallError } from "./RawFiles.ts"

/** The calls, each returning the C result (negative or -1 on failure, errno set). */
interface LibcCalls {
  mkdir(path: Uint8Array, mode: number): number
  open(path: Uint8Array, flags: number, mode: number): number
  write(fd: number, bytes: Uint8Array): number
  close(fd: number): number
  mknod(path: Uint8Array, mode: number, dev: bigint): number
  symlink(target: Uint8Array, path: Uint8Array): number
  link(target: Uint8Array, path: Uint8Array): number
  lchown(path: Uint8Array, uid: number, gid: number): number
  chmod(path: Uint8Array, mode: number): number
  utimensat(path: Uint8Array, times: BigInt64Array, flags: number): number
  lsetxattr(path: Uint8Array, name: Uint8Array, value: Uint8Array, length: number, flags: number): number
  unlink(path: Uint8Array): number
  rmdir(path: Uint8Array): number
  llistxattr(path: Uint8Array, list: Uint8Array): number
  lgetxattr(path: Uint8Array, name: Uint8Array, value: Uint8Array): number
  lstat(path: Uint8Array, stat: Uint8Array): number
  errno(): number
}

/** The slice of `bun:ffi` used here. */
interface BunFfi {
  readonly FFIType: { readonly ptr: number; readonly u64: number; readonly i64: number; readonly i32: number; readonly u32: number }
  readonly read: { i32(pointer: unknown, offset?: number): number }
  dlopen(path: string, symbols: Record<string, { args: ReadonlyArray<number>; returns: number }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => unknown>
  }
}

/** The slice of Deno's FFI used here. */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { parameters: ReadonlyArray<string>; result: string }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => unknown>
  }
  readonly UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number }
}

/** Signatures as (argument kinds, result kind); `p` pointer/buffer, `i` int, `u` unsigned int, `d` 64-bit, `z` size. */
const SIGNATURES: Record<string, [ReadonlyArray<"p" | "i" | "u" | "d" | "z">, "i" | "z" | "p"]> = {
  mkdir: [["p", "u"], "i"],
  open: [["p", "i", "u"], "i"],
  write: [["i", "p", "z"], "z"],
  close: [["i"], "i"],
  mknod: [["p", "u", "d"], "i"],
  symlink: [["p", "p"], "i"],
  link: [["p", "p"], "i"],
  lchown: [["p", "u", "u"], "i"],
  chmod: [["p", "u"], "i"],
  utimensat: [["i", "p", "p", "i"], "i"],
  lsetxattr: [["p", "p", "p", "z", "i"], "i"],
  unlink: [["p"], "i"],
  rmdir: [["p"], "i"],
  llistxattr: [["p", "p", "z"], "z"],
  lgetxattr: [["p", "p", "p", "z"], "z"],
  lstat: [["p", "p"], "i"],
  __errno_location: [[], "p"],
}

const AT_FDCWD = -100

const load = (): LibcCalls => {
  const deno = (globalThis as { readonly Deno?: DenoFfi }).Deno
  let call: (name: string, ...args: ReadonlyArray<unknown>) => unknown
  let errno: () => number
  let size: (n: number) => unknown
  if (deno !== undefined) {
    const kinds = { p: "buffer", i: "i32", u: "u32", d: "u64", z: "usize" } as const
    const results = { i: "i32", z: "isize", p: "pointer" } as const
    const libc = openLibc((name) =>
      deno.dlopen(
        name,
        Object.fromEntries(Object.entries(SIGNATURES).map(([symbol, [args, result]]) => [
          symbol,
          { parameters: args.map((kind) => kinds[kind]), result: results[result] },
        ])),
      )
    ).symbols
    call = (name, ...args) => libc[name]!(...args)
    errno = () => new deno.UnsafePointerView(libc.__errno_location!()).getInt32()
    size = (n) => BigInt(n)
  } else {
    const require = (import.meta as { readonly require?: (id: string) => unknown }).require
    if (require === undefined) throw new Error("Cannot write layer files: neither Bun nor Deno FFI is available")
    const ffi = require("bun:ffi") as BunFfi
    const { ptr, u64, i64, i32, u32 } = ffi.FFIType
    const kinds = { p: ptr, i: i32, u: u32, d: u64, z: u64 }
    const results = { i: i32, z: i64, p: ptr }
    const libc = openLibc((name) =>
      ffi.dlopen(
        name,
        Object.fromEntries(Object.entries(SIGNATURES).map(([symbol, [args, result]]) => [
          symbol,
          { args: args.map((kind) => kinds[kind]), returns: results[result] },
        ])),
      )
    ).symbols
    call = (name, ...args) => libc[name]!(...args)
    errno = () => ffi.read.i32(libc.__errno_location!(), 0)
    size = (n) => n
  }
  const int = (value: unknown) => Number(value)
  return {
    mkdir: (path, mode) => int(call("mkdir", path, mode)),
    open: (path, flags, mode) => int(call("open", path, flags, mode)),
    write: (fd, bytes) => int(call("write", fd, bytes, size(bytes.length))),
    close: (fd) => int(call("close", fd)),
    mknod: (path, mode, dev) => int(call("mknod", path, mode, dev)),
    symlink: (target, path) => int(call("symlink", target, path)),
    link: (target, path) => int(call("link", target, path)),
    lchown: (path, uid, gid) => int(call("lchown", path, uid, gid)),
    chmod: (path, mode) => int(call("chmod", path, mode)),
    utimensat: (path, times, flags) => int(call("utimensat", AT_FDCWD, path, new Uint8Array(times.buffer), flags)),
    lsetxattr: (path, name, value, length, flags) => int(call("lsetxattr", path, name, value, size(length), flags)),
    unlink: (path) => int(call("unlink", path)),
    rmdir: (path) => int(call("rmdir", path)),
    llistxattr: (path, list) => int(call("llistxattr", path, list, size(list.length))),
    lgetxattr: (path, name, value) => int(call("lgetxattr", path, name, value, size(value.length))),
    lstat: (path, stat) => int(call("lstat", path, stat)),
    errno,
  }
}

let libc: LibcCalls | undefined
const calls = (): LibcCalls => (libc ??= load())

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 5: "EIO", 9: "EBADF", 12: "ENOMEM", 13: "EACCES", 17: "EEXIST", 18: "EXDEV", 20: "ENOTDIR",
  21: "EISDIR", 22: "EINVAL", 24: "EMFILE", 27: "EFBIG", 28: "ENOSPC", 30: "EROFS", 31: "EMLINK", 36: "ENAMETOOLONG",
  39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 95: "EOPNOTSUPP", 122: "EDQUOT",
}

const cString = (bytes: Uint8Array): Uint8Array => {
  const out = new Uint8Array(bytes.length + 1)
  out.set(bytes)
  return out
}

const check = (result: number, syscall: string, path: Uint8Array): number => {
  if (result >= 0) return result
  const value = calls().errno()
  throw new SystemCallError(ERRNO_NAMES[value] ?? `errno ${value}`, syscall, path)
}

export const O_WRONLY = 0o1
export const O_CREAT = 0o100
export const O_TRUNC = 0o1000
export const O_NOFOLLOW = 0o400000
export const O_CLOEXEC = 0o2000000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFIFO = 0o010000
const AT_SYMLINK_NOFOLLOW = 0x100

/** Linux's `makedev`: the 64-bit device number of major and minor. */
export const makeDevice = (major: number, minor: number): bigint => {
  const ma = BigInt(major >>> 0)
  const mi = BigInt(minor >>> 0)
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn)
}

export const mkdir = (path: Uint8Array, mode: number): void => void check(calls().mkdir(cString(path), mode), "mkdir", path)

/** Creates (or truncates) a regular file for writing; never through a final symlink. */
export const openForWrite = (path: Uint8Array, mode: number): number =>
  check(calls().open(cString(path), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode), "open", path)

/** Writes all of `bytes` to `fd` (short writes continue). */
export const writeFully = (fd: number, bytes: Uint8Array, path: Uint8Array): void => {
  let offset = 0
  while (offset < bytes.length) offset += check(calls().write(fd, bytes.subarray(offset)), "write", path)
}

export const closeFile = (fd: number, path: Uint8Array): void => void check(calls().close(fd), "close", path)

export const mknod = (path: Uint8Array, mode: number, device: bigint): void =>
  void check(calls().mknod(cString(path), mode, device), "mknod", path)

export const symlink = (target: Uint8Array, path: Uint8Array): void =>
  void check(calls().symlink(cString(target), cString(path)), "symlink", path)

export const link = (target: Uint8Array, path: Uint8Array): void =>
  void check(calls().link(cString(target), cString(path)), "link", path)

export const lchown = (path: Uint8Array, uid: number, gid: number): void =>
  void check(calls().lchown(cString(path), uid >>> 0, gid >>> 0), "lchown", path)

export const chmod = (path: Uint8Array, mode: number): void => void check(calls().chmod(cString(path), mode), "chmod", path)

/** `utimensat(2)` to the nanosecond; `noFollow` sets a symlink's own times. */
export const setTimes = (path: Uint8Array, atimeNs: bigint, mtimeNs: bigint, noFollow: boolean): void => {
  const split = (ns: bigint): [bigint, bigint] => {
    let seconds = ns / 1_000_000_000n
    let rest = ns % 1_000_000_000n
    if (rest < 0n) {
      rest += 1_000_000_000n
      seconds -= 1n
    }
    return [seconds, rest]
  }
  const times = new BigInt64Array([...split(atimeNs), ...split(mtimeNs)])
  check(calls().utimensat(cString(path), times, noFollow ? AT_SYMLINK_NOFOLLOW : 0), "utimensat", path)
}

/** `lsetxattr(2)`: sets xattr `name` of `path` itself (not a symlink's target). */
export const lsetxattr = (path: Uint8Array, name: Uint8Array, value: Uint8Array): void =>
  // An empty value still needs a real buffer to point at.
  void check(calls().lsetxattr(cString(path), cString(name), value.length === 0 ? new Uint8Array(1) : value, value.length, 0), "lsetxattr", path)

export const unlink = (path: Uint8Array): void => void check(calls().unlink(cString(path)), "unlink", path)

export const rmdir = (path: Uint8Array): void => void check(calls().rmdir(cString(path)), "rmdir", path)

/** Linux caps an xattr list and value at 64 KiB, so buffers of that size never get ERANGE. */
const xattrBuffer = new Uint8Array(65536)

/** Every xattr of `path` itself (not a symlink's target): names and values. */
export const listXattrs = (path: Uint8Array): Array<readonly [Uint8Array, Uint8Array]> => {
  const c = cString(path)
  const length = check(calls().llistxattr(c, xattrBuffer), "llistxattr", path)
  const names: Array<Uint8Array> = []
  let start = 0
  for (let i = 0; i < length; i++) {
    if (xattrBuffer[i] !== 0) continue
    if (i > start) names.push(xattrBuffer.slice(start, i))
    start = i + 1
  }
  return names.map((name) => {
    const n = check(calls().lgetxattr(c, cString(name), xattrBuffer), "lgetxattr", path)
    return [name, xattrBuffer.slice(0, n)] as const
  })
}

const statBuffer = new Uint8Array(256)
const statView = new DataView(statBuffer.buffer)

/** `lstat(2)`'s mtime to the nanosecond (Deno's `node:fs` gives milliseconds); `st_mtim` is at 88 on x86_64 and aarch64. */
export const modificationTimeNs = (path: Uint8Array): bigint => {
  check(calls().lstat(cString(path), statBuffer), "lstat", path)
  return statView.getBigInt64(88, true) * 1_000_000_000n + statView.getBigInt64(96, true)
}
