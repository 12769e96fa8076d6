/**
 * Reading the graph's small metadata files (`json`, `parent`, `layersize`,
 * `checksum`, the helper files, `config.json`, `docker.pid`,
 * `repositories-<driver>`) when the graph may be hostile: a FIFO there must not
 * block the run, a symlink to `/dev/zero` must not be read without end, a
 * huge file must not take the machine's memory.
 *
 * The path is followed as Docker followed it (the root's own structure may be
 * symlinked by an admin), but what it leads to must be a regular file no
 * larger than the bound. It is checked with `stat` before opening, opened
 * non-blocking (a FIFO swapped in between cannot block), checked again on the
 * open descriptor, and read to at most the bound.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"

/** Bounds for the files Docker kept small; each is far above anything Docker wrote. */
export const SMALL_FILE_LIMIT = {
  /** An image's v1 `json` or a container's `config.json`: Docker's are a few KiB. */
  config: 16 << 20,
  /** A config in our own image store: the image's plus its history and diffIDs (one line each per layer). */
  storedConfig: 64 << 20,
  /** `repositories-<driver>`, `.migration-v1-images.json`, `repositories.json`: a line per tag or image. */
  repositories: 64 << 20,
  /** `parent`, `layersize`, `checksum`, `.migration-diffid`, `.migration-size`, `docker.pid`: one value. */
  value: 64 << 10,
} as const

/** A metadata file that is not a readable small regular file. `code` reads like an errno name. */
export class SmallFileError extends Error {
  override readonly name = "SmallFileError"
  constructor(
    readonly code: "ENOTREG" | "EFBIG",
    readonly path: string,
    /** What is wrong, without the path. */
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`)
  }
}

const kindOf = (stat: fs.Stats): string =>
  stat.isFIFO()
    ? "a FIFO"
    : stat.isCharacterDevice()
    ? "a character device"
    : stat.isBlockDevice()
    ? "a block device"
    : stat.isSocket()
    ? "a socket"
    : stat.isDirectory()
    ? "a directory"
    : "not a regular file"

const check = (file: string, stat: fs.Stats, limit: number): void => {
  if (!stat.isFile()) throw new SmallFileError("ENOTREG", file, `is ${kindOf(stat)}, not a regular file`)
  if (stat.size > limit) {
    throw new SmallFileError("EFBIG", file, `is ${stat.size} bytes, over the ${limit}-byte limit for this file`)
  }
}

/**
 * The bytes of `file`, which must be a regular file (after symlinks) of at
 * most `limit` bytes. Errors: the system call's (with its errno `code`, so
 * `ENOENT` reads as before) or a `SmallFileError`.
 */
export const readSmallFile = async (file: string, limit: number): Promise<Uint8Array> => {
  check(file, await fsp.stat(file), limit)
  const handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY)
  try {
    const stat = await handle.stat()
    check(file, stat, limit)
    // Read to the end or one byte past the bound, whichever comes first: a file
    // that grew since `stat` is still refused.
    const chunks: Array<Uint8Array> = []
    let total = 0
    for (;;) {
      const chunk = new Uint8Array(Math.min(Math.max(stat.size - total, 0) + 1, limit + 1 - total, 1 << 20))
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > limit) throw new SmallFileError("EFBIG", file, `grew past the ${limit}-byte limit for this file while read`)
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
  } finally {
    await handle.close()
  }
}

/** `readSmallFile` decoded as UTF-8 (invalid bytes become U+FFFD, as `fs.readFile(f, "utf8")` does). */
export const readSmallText = async (file: string, limit: number): Promise<string> =>
  new TextDecoder().decode(await readSmallFile(file, limit))

/** Whether a small-file read failed because nothing is there. */
export const isMissing = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "code" in error && (error.code === "ENOENT" || error.code === "ENOTDIR")

/**
 * Opens `file` for reading as a descriptor, refusing (with `SmallFileError`)
 * anything that is not a regular file: checked before opening, opened
 * non-blocking, checked again on the descriptor. For big files read as streams.
 */
export const openRegularFileSync = (file: string): { readonly fd: number; readonly size: number } => {
  const before = fs.statSync(file)
  check(file, before, Number.MAX_SAFE_INTEGER)
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY)
  try {
    const stat = fs.fstatSync(fd)
    check(file, stat, Number.MAX_SAFE_INTEGER)
    return { fd, size: stat.size }
  } catch (error) {
    fs.closeSync(fd)
    throw error
  }
}

/** Copies `from`, which must be a regular file (see `openRegularFileSync`), to a new file `to`. */
export const copyRegularFile = async (from: string, to: string): Promise<void> => {
  const source = openRegularFileSync(from)
  try {
    const target = await fsp.open(to, "wx", 0o600)
    try {
      const buffer = new Uint8Array(1 << 20)
      for (;;) {
        const n = fs.readSync(source.fd, buffer, 0, buffer.length, null)
        if (n === 0) break
        await target.write(buffer, 0, n)
      }
    } finally {
      await target.close()
    }
  } finally {
    fs.closeSync(source.fd)
  }
}

/** `copyRegularFile`, synchronously. */
export const copyRegularFileSync = (from: string, to: string, mode: number): void => {
  const source = openRegularFileSync(from)
  try {
    const target = fs.openSync(to, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode)
    try {
      const buffer = new Uint8Array(Math.min(Math.max(source.size, 1), 1 << 20))
      for (;;) {
        const n = fs.readSync(source.fd, buffer, 0, buffer.length, null)
        if (n === 0) break
        for (let at = 0; at < n;) at += fs.writeSync(target, buffer, at, n - at)
      }
    } finally {
      fs.closeSync(target)
    }
  } finally {
    fs.closeSync(source.fd)
  }
}

/** `readSmallFile`, synchronously (for code that cannot wait), with the same checks and bound. */
export const readSmallFileSync = (file: string, limit: number): Uint8Array => {
  for (;;) {
    const bytes = readSmallFileIfPresentSync(file, limit)
    if (bytes !== undefined) return bytes
    fs.statSync(file) // throws the system's error, with its code (unless the file just appeared: read again)
  }
}

/**
 * `readSmallFileSync`, but `undefined` when nothing is at `file` (no exception
 * to build: many images have no `parent` file, no `checksum`).
 */
export const readSmallFileIfPresentSync = (file: string, limit: number): Uint8Array | undefined => {
  const before = fs.statSync(file, { throwIfNoEntry: false })
  if (before === undefined) return undefined
  check(file, before, limit)
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY)
  try {
    const stat = fs.fstatSync(fd)
    check(file, stat, limit)
    const buffer = new Uint8Array(Math.min(stat.size, limit) + 1)
    let filled = 0
    for (let n = 1; n > 0 && filled < buffer.length; filled += n) n = fs.readSync(fd, buffer, filled, buffer.length - filled, null)
    if (filled > limit) throw new SmallFileError("EFBIG", file, `grew past the ${limit}-byte limit for this file while read`)
    return buffer.subarray(0, filled)
  } finally {
    fs.closeSync(fd)
  }
}
