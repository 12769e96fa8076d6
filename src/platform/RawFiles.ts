/**
 * Synchronous file access by raw byte paths, for the hot loops in workers.
 *
 * Linux names are bytes. Bun's `node:fs` takes them as `Buffer` paths; Deno's
 * `node:fs` decodes paths as UTF-8 and cannot name a file whose name is not
 * valid UTF-8 (tar-split stores such names as `name_raw`), so on Deno those
 * paths go through libc by FFI. Everything else uses `node:fs`.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import { errorCode } from "./ErrorCode.ts"
import { isValidUtf8 } from "../go/GoJson.ts"

/** What a path or handle refers to. */
export type FileKind = "file" | "directory" | "symlink" | "other"

/** `dir/name` as bytes (names that are not UTF-8 stay as they are). */
export const childPath = (dir: Uint8Array, name: Uint8Array): Uint8Array => {
  const out = new Uint8Array(dir.length + 1 + name.length)
  out.set(dir)
  out[dir.length] = 0x2f
  out.set(name, dir.length + 1)
  return out
}

/** A failed system call: `code` is the errno name (`ENOENT`, `ELOOP`, ...). */
export class SystemCallError extends Error {
  override readonly name = "SystemCallError"
  constructor(readonly code: string, readonly syscall: string, readonly path: Uint8Array) {
    super(`${syscall} ${new TextDecoder().decode(path)}: ${code}`)
  }
}

/** An open file. */
export interface FileHandle {
  readonly kind: FileKind
  readonly size: number
  /** Reads up to `length` bytes into `into` at `offset`; 0 at end of file. */
  read(into: Uint8Array, offset: number, length: number): number
  close(): void
}

/** What `lstat` says of a path, with Go's `syscall.Stat_t` meanings. */
export interface FileStat {
  readonly kind: FileKind
  /** Full `st_mode`: type and permission bits. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeNs: bigint
  /** Changes with every write or metadata change: what proves a file untouched. */
  readonly ctimeNs: bigint
  readonly ino: bigint
  readonly dev: bigint
  readonly nlink: number
  readonly rdev: bigint
}

/** The operations the layer reader and archiver need, all synchronous and by byte path. */
export interface RawFiles {
  /** `lstat(2)`, or `undefined` when nothing is there. */
  lstat(path: Uint8Array): FileStat | undefined
  /** Names in a directory (not `.` or `..`), as bytes, in no particular order. */
  readdir(path: Uint8Array): Array<Uint8Array>
  /** Opens read-only without following a final symlink (ELOOP if it is one) and without blocking on FIFOs. */
  openNoFollow(path: Uint8Array): FileHandle
  /** `lstat`'s file type, or `undefined` when nothing is there. */
  lstatKind(path: Uint8Array): FileKind | undefined
  readlink(path: Uint8Array): Uint8Array
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

const kindOfMode = (mode: number): FileKind => {
  const type = mode & 0o170000
  return type === 0o100000 ? "file" : type === 0o040000 ? "directory" : type === 0o120000 ? "symlink" : "other"
}

const errnoCode = (error: unknown): string => errorCode(error) ?? "EIO"

const asBuffer = (path: Uint8Array) => Buffer.from(path.buffer, path.byteOffset, path.byteLength)

/** `node:fs` with `Buffer` paths. */
const nodeFiles: RawFiles = {
  lstat(path) {
    try {
      const stat = fs.lstatSync(asBuffer(path), { bigint: true })
      return {
        kind: kindOfMode(Number(stat.mode)),
        mode: Number(stat.mode),
        uid: Number(stat.uid),
        gid: Number(stat.gid),
        size: Number(stat.size),
        mtimeNs: stat.mtimeNs,
        ctimeNs: stat.ctimeNs,
        ino: stat.ino,
        dev: stat.dev,
        nlink: Number(stat.nlink),
        rdev: stat.rdev,
      }
    } catch (error) {
      const code = errnoCode(error)
      if (code === "ENOENT" || code === "ENOTDIR") return undefined
      throw new SystemCallError(code, "lstat", path)
    }
  },
  readdir(path) {
    try {
      return fs.readdirSync(asBuffer(path), { encoding: "buffer" }).map((name) => new Uint8Array(name))
    } catch (error) {
      throw new SystemCallError(errnoCode(error), "readdir", path)
    }
  },
  openNoFollow(path) {
    let fd: number
    try {
      fd = fs.openSync(Buffer.from(path.buffer, path.byteOffset, path.byteLength), OPEN_FLAGS)
    } catch (error) {
      throw new SystemCallError(errnoCode(error), "open", path)
    }
    try {
      const stat = fs.fstatSync(fd)
      return {
        kind: kindOfMode(stat.mode),
        size: stat.size,
        read: (into, offset, length) => {
          try {
            return fs.readSync(fd, into, offset, length, null)
          } catch (error) {
            throw new SystemCallError(errnoCode(error), "read", path)
          }
        },
        close: () => fs.closeSync(fd),
      }
    } catch (error) {
      fs.closeSync(fd)
      throw error instanceof SystemCallError ? error : new SystemCallError(errnoCode(error), "fstat", path)
    }
  },
  lstatKind(path) {
    try {
      return kindOfMode(fs.lstatSync(Buffer.from(path.buffer, path.byteOffset, path.byteLength)).mode)
    } catch (error) {
      const code = errnoCode(error)
      if (code === "ENOENT" || code === "ENOTDIR") return undefined
      throw new SystemCallError(code, "lstat", path)
    }
  },
  readlink(path) {
    try {
      return new Uint8Array(
        fs.readlinkSync(Buffer.from(path.buffer, path.byteOffset, path.byteLength), { encoding: "buffer" }),
      )
    } catch (error) {
      throw new SystemCallError(errnoCode(error), "readlink", path)
    }
  },
}

/** The slice of Deno's FFI API used here (declared locally so `tsc` with bun-types needs no Deno types). */
interface DenoFfi {
  readonly build: { readonly arch: string }
  dlopen(path: string, symbols: Record<string, { parameters: ReadonlyArray<string>; result: string }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => unknown>
  }
  readonly UnsafePointerView: new (pointer: unknown) => {
    getInt32(offset?: number): number
    getArrayBuffer(length: number, offset?: number): ArrayBuffer
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 5: "EIO", 9: "EBADF", 13: "EACCES", 20: "ENOTDIR", 21: "EISDIR",
  22: "EINVAL", 24: "EMFILE", 36: "ENAMETOOLONG", 40: "ELOOP", 6: "ENXIO",
}

/** libc through Deno's FFI, for byte paths Deno's `node:fs` cannot express. */
const makeLibcFiles = (deno: DenoFfi): RawFiles => {
  const libc = deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    fstat: { parameters: ["i32", "buffer"], result: "i32" },
    lstat: { parameters: ["buffer", "buffer"], result: "i32" },
    readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
    opendir: { parameters: ["buffer"], result: "pointer" },
    readdir: { parameters: ["pointer"], result: "pointer" },
    closedir: { parameters: ["pointer"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  }).symbols
  // struct stat differs between x86_64 and aarch64 before st_size (48); the times sit at 72/88 on both.
  const arm = deno.build.arch === "aarch64"
  const modeOffset = arm ? 16 : 24
  const errno = (): string => {
    const value = new deno.UnsafePointerView(libc.__errno_location!()).getInt32()
    return ERRNO_NAMES[value] ?? `errno ${value}`
  }
  const cPath = (path: Uint8Array): Uint8Array => {
    const out = new Uint8Array(path.length + 1)
    out.set(path)
    return out
  }
  const stat = new Uint8Array(256)
  const statView = new DataView(stat.buffer)
  return {
    lstat(path) {
      if (Number(libc.lstat!(cPath(path), stat)) !== 0) {
        const code = errno()
        if (code === "ENOENT" || code === "ENOTDIR") return undefined
        throw new SystemCallError(code, "lstat", path)
      }
      const mode = statView.getUint32(modeOffset, true)
      return {
        kind: kindOfMode(mode),
        mode,
        uid: statView.getUint32(arm ? 24 : 28, true),
        gid: statView.getUint32(arm ? 28 : 32, true),
        size: Number(statView.getBigInt64(48, true)),
        mtimeNs: statView.getBigInt64(88, true) * 1_000_000_000n + statView.getBigInt64(96, true),
        ctimeNs: statView.getBigInt64(104, true) * 1_000_000_000n + statView.getBigInt64(112, true),
        ino: statView.getBigUint64(8, true),
        dev: statView.getBigUint64(0, true),
        nlink: arm ? statView.getUint32(20, true) : Number(statView.getBigUint64(16, true)),
        rdev: statView.getBigUint64(arm ? 32 : 40, true),
      }
    },
    readdir(path) {
      const dir = libc.opendir!(cPath(path))
      if (dir === null) throw new SystemCallError(errno(), "opendir", path)
      const names: Array<Uint8Array> = []
      try {
        for (;;) {
          const entry = libc.readdir!(dir)
          if (entry === null) break
          // struct dirent: d_name starts at byte 19 and is NUL-terminated (at most 256 bytes).
          const raw = new Uint8Array(new deno.UnsafePointerView(entry).getArrayBuffer(256, 19))
          const nul = raw.indexOf(0)
          const name = raw.slice(0, nul < 0 ? raw.length : nul)
          if (!(name.length === 1 && name[0] === 0x2e) && !(name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
            names.push(name)
          }
        }
      } finally {
        libc.closedir!(dir)
      }
      return names
    },
    openNoFollow(path) {
      const fd = Number(libc.open!(cPath(path), OPEN_FLAGS, 0))
      if (fd < 0) throw new SystemCallError(errno(), "open", path)
      if (Number(libc.fstat!(fd, stat)) !== 0) {
        const code = errno()
        libc.close!(fd)
        throw new SystemCallError(code, "fstat", path)
      }
      return {
        kind: kindOfMode(statView.getUint32(modeOffset, true)),
        size: Number(statView.getBigInt64(48, true)),
        read(into, offset, length) {
          const n = Number(libc.read!(fd, into.subarray(offset, offset + length), length))
          if (n < 0) throw new SystemCallError(errno(), "read", path)
          return n
        },
        close: () => void libc.close!(fd),
      }
    },
    lstatKind(path) {
      if (Number(libc.lstat!(cPath(path), stat)) !== 0) {
        const code = errno()
        if (code === "ENOENT" || code === "ENOTDIR") return undefined
        throw new SystemCallError(code, "lstat", path)
      }
      return kindOfMode(statView.getUint32(modeOffset, true))
    },
    readlink(path) {
      const target = new Uint8Array(4096)
      const n = Number(libc.readlink!(cPath(path), target, target.length))
      if (n < 0) throw new SystemCallError(errno(), "readlink", path)
      return target.slice(0, n)
    },
  }
}

const deno = (globalThis as { readonly Deno?: DenoFfi }).Deno
let libcFiles: RawFiles | undefined

/** Routes each call to `node:fs`, or to libc on Deno when the path is not valid UTF-8. */
const choose = (path: Uint8Array): RawFiles => {
  if (deno === undefined || isValidUtf8(path)) return nodeFiles
  libcFiles ??= makeLibcFiles(deno)
  return libcFiles
}

/** Deno's `node:fs` replaces bytes that are not UTF-8 in listed names with U+FFFD: list those through libc. */
const lossyName = (name: Uint8Array): boolean => {
  for (let i = 0; i + 2 < name.length; i++) {
    if (name[i] === 0xef && name[i + 1] === 0xbf && name[i + 2] === 0xbd) return true
  }
  return false
}

/** Byte-path file access for this runtime. */
export const rawFiles: RawFiles = {
  lstat: (path) => choose(path).lstat(path),
  readdir: (path) => {
    const names = choose(path).readdir(path)
    if (deno === undefined || !names.some(lossyName)) return names
    libcFiles ??= makeLibcFiles(deno)
    return libcFiles.readdir(path)
  },
  openNoFollow: (path) => choose(path).openNoFollow(path),
  lstatKind: (path) => choose(path).lstatKind(path),
  readlink: (path) => choose(path).readlink(path),
}
