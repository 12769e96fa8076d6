/**
 * Opening a file named by a tar-split entry inside a layer root, the way
 * Docker's `filepath.Join(root, name)` + `os.Open` did, but never outside it.
 *
 * Go cleans the joined path lexically (so `a/../b` is `b` and `/etc/x` is
 * `<root>/etc/x`); the kernel then follows symlinks. We do the same lexical
 * step, then follow symlinks ourselves, component by component: a `..` that
 * climbs above the root or a symlink that leads out of it (absolute, or
 * relative through `..`) is refused instead of read.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { type FileHandle, rawFiles, type RawFiles, SystemCallError } from "../platform/RawFiles.ts"

/** Why a name could not be opened inside the layer. */
export type LayerPathProblem = "Escapes" | "Missing" | "NotRegular" | "Unreadable"

/** A name that cannot be opened safely; `problem` says why. */
export class LayerPathError extends Error {
  override readonly name = "LayerPathError"
  constructor(readonly problem: LayerPathProblem, message: string) {
    super(message)
  }
}

const SLASH = 0x2f
const DOT = 0x2e
/** Linux gives up after 40 symlinks in one lookup (ELOOP); so do we. */
const MAX_SYMLINKS = 40

const decoder = new TextDecoder()
const show = (components: ReadonlyArray<Uint8Array>): string => components.map((c) => decoder.decode(c)).join("/")

/** Splits a path into components, applying `.` and `..` lexically from `base`; `undefined` if `..` climbs above it. */
const cleanComponents = (base: ReadonlyArray<Uint8Array>, path: Uint8Array): Array<Uint8Array> | undefined => {
  const out = [...base]
  let start = 0
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== SLASH) continue
    const length = i - start
    if (length === 0 || (length === 1 && path[start] === DOT)) {
      // empty or "."
    } else if (length === 2 && path[start] === DOT && path[start + 1] === DOT) {
      if (out.length === 0) return undefined
      out.pop()
    } else {
      out.push(path.subarray(start, i))
    }
    start = i + 1
  }
  return out
}

/** Opens files by tar-split name inside one layer root; caches the directories it has checked. */
export class LayerRoot {
  private readonly root: Uint8Array
  /** Logical directory prefix (latin1 key) → its resolved components; all checked to stay inside the root. */
  private readonly directories = new Map<string, ReadonlyArray<Uint8Array>>()

  constructor(root: string | Uint8Array, private readonly files: RawFiles = rawFiles) {
    const bytes = typeof root === "string" ? new TextEncoder().encode(root) : root
    let end = bytes.length
    while (end > 1 && bytes[end - 1] === SLASH) end--
    this.root = bytes.subarray(0, end)
  }

  /** The absolute byte path of components under the root. */
  pathOf(components: ReadonlyArray<Uint8Array>): Uint8Array {
    let length = this.root.length
    for (const c of components) length += 1 + c.length
    const out = new Uint8Array(length)
    out.set(this.root)
    let at = this.root.length
    for (const c of components) {
      out[at++] = SLASH
      out.set(c, at)
      at += c.length
    }
    return out
  }

  /** Opens the regular file `name` (a tar-split entry name) for reading. */
  open(name: Uint8Array): FileHandle {
    const logical = cleanComponents([], name)
    if (logical === undefined) {
      throw new LayerPathError("Escapes", `${decoder.decode(name)}: name climbs out of the layer root with ..`)
    }
    let components = logical
    for (let followed = 0; followed <= MAX_SYMLINKS; followed++) {
      const directory = this.resolveDirectory(components.slice(0, -1), name)
      const last = components[components.length - 1]
      if (last === undefined) throw new LayerPathError("NotRegular", `${decoder.decode(name)}: names the layer root`)
      const resolved = [...directory, last]
      let handle: FileHandle
      try {
        handle = this.files.openNoFollow(this.pathOf(resolved))
      } catch (error) {
        if (error instanceof SystemCallError && error.code === "ELOOP") {
          components = this.followLink(directory, resolved, name)
          continue
        }
        throw this.openFailure(error, name)
      }
      if (handle.kind !== "file") {
        handle.close()
        throw new LayerPathError("NotRegular", `${decoder.decode(name)}: is a ${handle.kind}, not a regular file`)
      }
      return handle
    }
    throw new LayerPathError("Escapes", `${decoder.decode(name)}: too many levels of symbolic links`)
  }

  /** Resolves a directory path to real components inside the root, following symlinks safely. */
  private resolveDirectory(logical: ReadonlyArray<Uint8Array>, name: Uint8Array): ReadonlyArray<Uint8Array> {
    if (logical.length === 0) return logical
    const key = latin1Key(logical)
    const cached = this.directories.get(key)
    if (cached !== undefined) return cached
    let components: ReadonlyArray<Uint8Array> = logical
    for (let followed = 0; followed <= MAX_SYMLINKS; followed++) {
      const parent = this.resolveDirectory(components.slice(0, -1), name)
      const resolved = [...parent, components[components.length - 1]!]
      const kind = this.files.lstatKind(this.pathOf(resolved))
      if (kind === "directory") {
        this.directories.set(key, resolved)
        return resolved
      }
      if (kind === undefined) {
        throw new LayerPathError("Missing", `${decoder.decode(name)}: directory ${show(resolved)} does not exist`)
      }
      if (kind !== "symlink") {
        throw new LayerPathError("Missing", `${decoder.decode(name)}: ${show(resolved)} is not a directory`)
      }
      const target = this.followLink(parent, resolved, name)
      if (target.length === 0) {
        this.directories.set(key, target)
        return target
      }
      components = target
    }
    throw new LayerPathError("Escapes", `${decoder.decode(name)}: too many levels of symbolic links`)
  }

  /** Where the symlink at `link` (inside `directory`) leads, as components under the root. */
  private followLink(
    directory: ReadonlyArray<Uint8Array>,
    link: ReadonlyArray<Uint8Array>,
    name: Uint8Array,
  ): Array<Uint8Array> {
    let target: Uint8Array
    try {
      target = this.files.readlink(this.pathOf(link))
    } catch (error) {
      throw this.openFailure(error, name)
    }
    const shown = `${decoder.decode(name)}: symlink ${show(link)} -> ${decoder.decode(target)}`
    if (target[0] === SLASH) throw new LayerPathError("Escapes", `${shown} is absolute and leads out of the layer`)
    const next = cleanComponents(directory, target)
    if (next === undefined) throw new LayerPathError("Escapes", `${shown} leads out of the layer`)
    return next
  }

  private openFailure(error: unknown, name: Uint8Array): LayerPathError {
    if (error instanceof SystemCallError) {
      const where = decoder.decode(error.path)
      if (error.code === "ENOENT" || error.code === "ENOTDIR") {
        return new LayerPathError("Missing", `${decoder.decode(name)}: not in the layer (${where}: no such file)`)
      }
      return new LayerPathError("Unreadable", `${decoder.decode(name)}: cannot ${error.syscall} ${where}: ${error.code}`)
    }
    return new LayerPathError("Unreadable", `${decoder.decode(name)}: ${String(error)}`)
  }
}

/** A map key that is one-to-one with the byte components. */
const latin1Key = (components: ReadonlyArray<Uint8Array>): string => {
  let key = ""
  for (const c of components) key += "/" + Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("latin1")
  return key
}
