/**
 * `syncfs(2)` for Bun and Deno, through each runtime's FFI to the C library
 * (as `Xattr.ts` reaches `lgetxattr`): one call makes everything written to a
 * file system durable, where an `fsync` per file costs a journal commit each.
 * Where the FFI cannot be reached (Deno without --allow-ffi), coreutils'
 * `sync --file-system` makes the same call.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { openLibc } from "./Libc.ts"

/** A file system could not be synced: what was written there may not be durable. */
export class SyncFileSystemError extends Error {
  override readonly name = "SyncFileSystemError"
  constructor(readonly path: string, readonly detail: string) {
    super(`Cannot sync the file system of ${path}: ${detail}`)
  }
}

type Syncfs = (fd: number) => number

/** The slice of `bun:ffi` used here. */
interface BunFfi {
  readonly FFIType: { readonly i32: number }
  dlopen(path: string, symbols: Record<string, { args: ReadonlyArray<number>; returns: number }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => number>
  }
}

/** The slice of Deno's FFI used here. */
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, { parameters: ReadonlyArray<string>; result: string }>): {
    symbols: Record<string, (...args: ReadonlyArray<unknown>) => number>
  }
}

const load = (): Syncfs | undefined => {
  try {
    const deno = (globalThis as { readonly Deno?: DenoFfi }).Deno
    if (deno !== undefined) {
      const libc = openLibc((name) => deno.dlopen(name, { syncfs: { parameters: ["i32"], result: "i32" } }))
      return (fd) => libc.symbols.syncfs!(fd)
    }
    const require = (import.meta as { readonly require?: (id: string) => unknown }).require
    if (require === undefined) return undefined
    const ffi = require("bun:ffi") as BunFfi
    const libc = openLibc((name) => ffi.dlopen(name, { syncfs: { args: [ffi.FFIType.i32], returns: ffi.FFIType.i32 } }))
    return (fd) => libc.symbols.syncfs!(fd)
  } catch {
    return undefined // no FFI permission, no FFI at all, or no C library: the callers fall back
  }
}

let syncfsCall: Syncfs | undefined | null = null

/** Makes everything written to the file system holding `target` durable (data, inodes, directory entries). */
export const syncFileSystem = (target: string): void => {
  if (syncfsCall === null) syncfsCall = load()
  if (syncfsCall !== undefined) {
    const fd = fs.openSync(target, fs.constants.O_RDONLY)
    try {
      if (syncfsCall(fd) !== 0) throw new SyncFileSystemError(target, "syncfs failed (an I/O error on that file system)")
    } finally {
      fs.closeSync(fd)
    }
    return
  }
  const run = spawnSync("sync", ["--file-system", target], { encoding: "utf8" })
  if (run.status !== 0) throw new SyncFileSystemError(target, run.error?.message ?? run.stderr.trim())
}

/** `syncFileSystem` once for each file system among `targets` (told apart by device). */
export const syncFileSystems = (targets: ReadonlyArray<string>): void => {
  const done = new Set<number>()
  for (const target of targets) {
    const device = fs.statSync(target).dev
    if (done.has(device)) continue
    syncFileSystem(target)
    done.add(device)
  }
}
