/**
 * Applies a layer's tar stream to an empty directory the way Docker's
 * overlay2 `ApplyDiff` does (`archive.Unpack` with the overlay whiteout
 * converter): `.wh.<name>` becomes a character device 0/0 named `<name>`
 * (owned as the whiteout entry), `.wh..wh..opq` sets
 * `trusted.overlay.opaque=y` on its directory, every other entry is created
 * with its owner, `SCHILY.xattr.*` xattrs, mode (set-id and sticky bits
 * too), and times (atime the later of atime and mtime, times outside
 * 1970..2262 as the epoch; directories' times set again at the end); missing
 * parents are made 0755; an existing entry is replaced unless both are
 * directories. Names are cleaned and may not leave the directory.
 *
 * @module
 */
import * as libc from "../platform/LibcWrite.ts"
import { rawFiles, SystemCallError } from "../platform/RawFiles.ts"
import { type TarEntrySink, type TarHeader, TarStreamReader } from "./TarStreamReader.ts"

/** An entry of the layer's tar cannot be applied (a name leaving the directory, an unknown type, a failed call). */
export class LayerApplyError extends Error {
  override readonly name = "LayerApplyError"
}

const SLASH = 0x2f
const encoder = new TextEncoder()
const WHITEOUT_PREFIX = encoder.encode(".wh.")
const OPAQUE = encoder.encode(".wh..wh..opq")
const OPAQUE_XATTR = encoder.encode("trusted.overlay.opaque")
const IMPLIED_DIRECTORY_MODE = 0o755
const MAX_TIME_NS = (1n << 63n) - 1n

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((byte, i) => byte === b[i])
const startsWith = (a: Uint8Array, prefix: Uint8Array) => a.length >= prefix.length && prefix.every((byte, i) => byte === a[i])
const display = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** `path.Clean` of a name without leading slashes, as components; `undefined` when it leaves the directory. */
export const cleanName = (name: Uint8Array): Array<Uint8Array> | undefined => {
  const parts: Array<Uint8Array> = []
  let start = 0
  for (let i = 0; i <= name.length; i++) {
    if (i < name.length && name[i] !== SLASH) continue
    const part = name.subarray(start, i)
    start = i + 1
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
      if (parts.length === 0) return undefined
      parts.pop()
      continue
    }
    parts.push(part)
  }
  return parts
}

const join = (base: Uint8Array, parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const length = parts.reduce((sum, part) => sum + 1 + part.length, base.length)
  const out = new Uint8Array(length)
  out.set(base)
  let at = base.length
  for (const part of parts) {
    out[at++] = SLASH
    out.set(part, at)
    at += part.length
  }
  return out
}

/** `os.RemoveAll`: the entry and everything under it. */
const removeAll = (target: Uint8Array): void => {
  const stat = rawFiles.lstat(target)
  if (stat === undefined) return
  if (stat.kind !== "directory") return libc.unlink(target)
  for (const name of rawFiles.readdir(target)) removeAll(join(target, [name]))
  libc.rmdir(target)
}

const boundTime = (ns: bigint): bigint => (ns < 0n || ns > MAX_TIME_NS ? 0n : ns)

/** The entry being written (a regular file's data arrives after its header). */
interface Current {
  readonly header: TarHeader
  readonly path: Uint8Array
  readonly fd: number | undefined
}

/** A sink for `TarStreamReader` that applies each entry under `dest`; `finish` sets the directories' times. */
export const overlayDiffApplier = (dest: Uint8Array): TarEntrySink & { finish(): void; abort(): void } => {
  const directories: Array<{ readonly path: Uint8Array; readonly header: TarHeader }> = []
  let current: Current | undefined

  const fail = (what: string, error: unknown): never => {
    if (error instanceof LayerApplyError) throw error
    const detail = error instanceof SystemCallError ? `${error.syscall}: ${error.code}` : String(error)
    throw new LayerApplyError(`${what}: ${detail}`)
  }

  const impliedDirectories = (parts: ReadonlyArray<Uint8Array>): void => {
    const parent = join(dest, parts)
    if (parts.length === 0 || rawFiles.lstat(parent) !== undefined) return
    for (let i = 1; i <= parts.length; i++) {
      const dir = join(dest, parts.slice(0, i))
      const stat = rawFiles.lstat(dir)
      if (stat === undefined) {
        libc.mkdir(dir, IMPLIED_DIRECTORY_MODE)
        libc.chmod(dir, IMPLIED_DIRECTORY_MODE)
      } else if (stat.kind !== "directory") {
        throw new LayerApplyError(`${display(dir)}: not a directory`)
      }
    }
  }

  const setTimes = (header: TarHeader, target: Uint8Array, noFollow: boolean) => {
    const atime = header.atimeNs !== undefined && header.atimeNs > header.mtimeNs ? header.atimeNs : header.mtimeNs
    libc.setTimes(target, boundTime(atime), boundTime(header.mtimeNs), noFollow)
  }

  /** `createTarFile` after the entry exists: owner, xattrs, mode, times. */
  const finishEntry = (header: TarHeader, target: Uint8Array, hardlinkTarget: Uint8Array | undefined) => {
    libc.lchown(target, header.uid, header.gid)
    for (const [name, value] of header.xattrs) libc.lsetxattr(target, name, value)
    const mode = header.mode & 0o7777
    const linkedToSymlink = hardlinkTarget !== undefined && rawFiles.lstat(hardlinkTarget)?.kind === "symlink"
    if (header.typeflag !== "2" && !linkedToSymlink) libc.chmod(target, mode)
    if (header.typeflag === "2") setTimes(header, target, true)
    else if (!linkedToSymlink) setTimes(header, target, false)
  }

  const entry = (header: TarHeader): void => {
    current = undefined
    if (header.typeflag === "g") return
    const parts = cleanName(header.name)
    if (parts === undefined) throw new LayerApplyError(`invalid entry name ${JSON.stringify(display(header.name))}: it leaves the layer`)
    if (parts.length === 0) return
    const target = join(dest, parts)
    const base = parts[parts.length - 1]!
    const parentParts = parts.slice(0, -1)
    const existing = rawFiles.lstat(target)
    if (existing !== undefined && !(existing.kind === "directory" && header.typeflag === "5")) removeAll(target)
    impliedDirectories(parentParts)
    const parent = join(dest, parentParts)
    if (startsWith(base, WHITEOUT_PREFIX)) {
      const original = base.subarray(WHITEOUT_PREFIX.length)
      if (original.length === 0 || equalBytes(original, encoder.encode(".")) || equalBytes(original, encoder.encode(".."))) {
        throw new LayerApplyError(`invalid whiteout entry ${JSON.stringify(display(header.name))}`)
      }
      if (equalBytes(base, OPAQUE)) {
        libc.lsetxattr(parent, OPAQUE_XATTR, encoder.encode("y"))
        return
      }
      const whiteout = join(parent, [original])
      libc.mknod(whiteout, libc.S_IFCHR, 0n)
      if (header.uid !== 0 || header.gid !== 0) libc.lchown(whiteout, header.uid, header.gid)
      return
    }
    const permissions = header.mode & 0o777
    switch (header.typeflag) {
      case "5":
        if (existing?.kind !== "directory") libc.mkdir(target, permissions)
        break
      case "0":
        current = { header, path: target, fd: libc.openForWrite(target, permissions) }
        return
      case "3":
      case "4":
      case "6": {
        const type = header.typeflag === "3" ? libc.S_IFCHR : header.typeflag === "4" ? libc.S_IFBLK : libc.S_IFIFO
        libc.mknod(target, (header.mode & 0o7777) | type, libc.makeDevice(header.devmajor, header.devminor))
        break
      }
      case "1": {
        const linkParts = cleanName(header.linkname)
        if (linkParts === undefined || linkParts.length === 0) {
          throw new LayerApplyError(`invalid hardlink ${JSON.stringify(display(header.name))} -> ${JSON.stringify(display(header.linkname))}`)
        }
        const linkTarget = join(dest, linkParts)
        libc.link(linkTarget, target)
        finishEntry(header, target, linkTarget)
        return
      }
      case "2":
        libc.symlink(header.linkname, target)
        break
      default:
        throw new LayerApplyError(`unhandled tar header type ${JSON.stringify(header.typeflag)} for ${JSON.stringify(display(header.name))}`)
    }
    finishEntry(header, target, undefined)
    if (header.typeflag === "5") directories.push({ path: target, header })
  }

  return {
    entry: (header) => {
      try {
        entry(header)
      } catch (error) {
        fail(display(header.name), error)
      }
    },
    data: (bytes) => {
      if (current?.fd === undefined) return
      try {
        libc.writeFully(current.fd, bytes, current.path)
      } catch (error) {
        fail(display(current.header.name), error)
      }
    },
    end: () => {
      const done = current
      current = undefined
      if (done?.fd === undefined) return
      try {
        libc.closeFile(done.fd, done.path)
        finishEntry(done.header, done.path, undefined)
      } catch (error) {
        fail(display(done.header.name), error)
      }
    },
    abort: () => {
      const open = current
      current = undefined
      if (open?.fd !== undefined) {
        try {
          libc.closeFile(open.fd, open.path)
        } catch {
          // the entry is being thrown away with the rest
        }
      }
    },
    finish: () => {
      for (const { path, header } of directories) {
        try {
          setTimes(header, path, false)
        } catch (error) {
          fail(display(header.name), error)
        }
      }
    },
  }
}

/** A layer's tar, pushed in pieces, unpacked into `dest` as overlay2's `ApplyDiff` does; `finish` after the last piece. */
export const overlayTarUnpacker = (dest: Uint8Array) => {
  const applier = overlayDiffApplier(dest)
  const reader = new TarStreamReader(applier)
  return {
    write: (bytes: Uint8Array) => reader.push(bytes),
    finish: () => {
      reader.close()
      applier.finish()
    },
    abort: () => applier.abort(),
  }
}
