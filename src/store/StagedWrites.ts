/**
 * Store files written in batches, as crash-safe as one `fsync` per file and
 * far cheaper: each file (or finished directory) is written under a temporary
 * name at once, and `commit` syncs the file system once (every staged byte
 * durable), renames everything into place, and syncs once more (the renames
 * durable). A crash at any moment leaves each final name either absent or
 * whole, never torn, and temporaries that the next run sweeps.
 *
 * Until `commit`, readers ask `isStaged` / `stagedBytes` for what is staged
 * but not yet at its name (a child layer's parent, a list updated twice).
 *
 * A collection (a directory of thousands of entries, like the image store's
 * `content/sha256`) that is empty or absent when the batch starts is staged
 * whole: its entries are written straight into a temporary sibling directory,
 * which `commit` renames onto it at once. One rename instead of one per entry:
 * renames were a fifth of migrating 10,000 images. A collection that already
 * has entries (an earlier run's) takes its entries one by one, as above.
 *
 * @module
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { syncFileSystems } from "../platform/SyncFileSystem.ts"
import { writeWholeFile } from "../platform/WriteAll.ts"
import { TEMPORARY_PREFIX } from "./StoreFiles.ts"

const encoder = new TextEncoder()

export class StagedWrites {
  private renames: Array<Rename> = []
  private readonly targets = new Set<string>()
  private readonly kept = new Map<string, Uint8Array>()
  private readonly directories = new Set<string>()
  /** Collections staged whole: final directory -> its temporary sibling, and whether the directory was there. */
  private collections = new Map<string, { readonly temporary: string; readonly existed: boolean; used: boolean }>()

  /** `fileSystems`: a path on each file system written to (all are synced at `commit`). */
  constructor(private readonly fileSystems: ReadonlyArray<string>) {}

  /**
   * Writes `data` beside `target` under a temporary name, renamed to `target`
   * at `commit`. With `keep`, the bytes stay readable through `stagedBytes`
   * until then (for a file read, changed and written again in one batch).
   */
  writeFile(target: string, data: string | Uint8Array, mode: number, keep = false): void {
    const bytes = typeof data === "string" ? encoder.encode(data) : data
    const inCollection = this.placeOf(target)
    if (inCollection !== undefined) {
      // Nothing reads the collection's temporary before `commit`: the file is written in place, a second write replaces it.
      writeWholeFile(inCollection, bytes, mode, fs.constants.O_TRUNC)
      this.targets.add(target)
      if (keep) this.kept.set(target, bytes)
      return
    }
    const temporary = path.join(path.dirname(target), `${TEMPORARY_PREFIX}${path.basename(target)}-${randomBytes(6).toString("hex")}`)
    writeWholeFile(temporary, bytes, mode, fs.constants.O_EXCL)
    this.renames.push({ from: temporary, to: target, directory: false })
    this.targets.add(target)
    if (keep) this.kept.set(target, bytes)
  }

  /**
   * A finished directory at `work`, renamed to `target` at `commit`; if
   * `target` is there by then (made by another writer), it stays and `work` goes.
   */
  stageDirectory(work: string, target: string): void {
    this.renames.push({ from: work, to: target, directory: true })
    this.targets.add(target)
  }

  /** `mkdir -p` with `mode` for new directories, once per batch for each (most are shared by every image). */
  makeDirectory(dir: string, mode: number): void {
    if (this.directories.has(dir)) return
    fs.mkdirSync(this.placeOf(dir) ?? dir, { recursive: true, mode })
    this.directories.add(dir)
  }

  /**
   * Declares `dir` a collection: if it is absent or empty now, its entries
   * written in this batch (`writeFile`, `makeDirectory`, `makeNewDirectory`) go
   * into a temporary sibling made with `mode` (or the mode `dir` has), renamed
   * onto `dir` at `commit`. Whether it is staged whole or not, callers write
   * to final names; `isStaged` answers for them until `commit`.
   */
  stageCollection(dir: string, mode: number): void {
    if (this.collections.has(dir)) return
    const stat = fs.statSync(dir, { throwIfNoEntry: false })
    if (stat !== undefined && (!stat.isDirectory() || fs.readdirSync(dir).length > 0)) return
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode })
    const temporary = path.join(path.dirname(dir), `${TEMPORARY_PREFIX}${path.basename(dir)}-${randomBytes(6).toString("hex")}`)
    fs.mkdirSync(temporary, { mode: stat === undefined ? mode : stat.mode & 0o7777 })
    this.collections.set(dir, { temporary, existed: stat !== undefined, used: false })
  }

  /**
   * A new, empty directory to fill with `target`'s entries: in its
   * collection's temporary when that is staged whole, else `work()` (a work
   * directory elsewhere). Stage it with `stageNewDirectory` once it is full.
   */
  makeNewDirectory(target: string, work: () => string): string {
    const inCollection = this.placeOf(target)
    if (inCollection === undefined) return work()
    fs.mkdirSync(inCollection, { mode: 0o700 })
    return inCollection
  }

  /** `dir`, from `makeNewDirectory(target)` and now full, to be at `target` after `commit`. */
  stageNewDirectory(target: string, dir: string): void {
    if (dir === this.placeOf(target)) this.targets.add(target)
    else this.stageDirectory(dir, target)
  }

  /** Where `target` goes now when it lies inside a collection staged whole. */
  private placeOf(target: string): string | undefined {
    if (this.collections.size === 0) return undefined
    for (const [dir, collection] of this.collections) {
      if (target.length > dir.length && target.startsWith(dir) && target[dir.length] === path.sep) {
        collection.used = true
        return collection.temporary + target.slice(dir.length)
      }
    }
    return undefined
  }

  /** Whether `target` is staged (and so will exist after `commit`). */
  isStaged(target: string): boolean {
    return this.targets.has(target)
  }

  /** The last bytes staged for `target` with `keep`. */
  stagedBytes(target: string): Uint8Array | undefined {
    return this.kept.get(target)
  }

  /** How many renames wait for `commit`. */
  get pending(): number {
    return this.renames.length
  }

  /**
   * `commit` with the renames run in parallel (in libuv's thread pool; renames
   * in different directories do not wait for each other in the kernel). Each
   * target is renamed to once: the last file staged for it, or the first
   * directory, as one after the other would leave it; the others are removed.
   */
  async commitInParallel(concurrency = 16): Promise<void> {
    if (this.renames.length === 0 && this.collections.size === 0) return
    const renames = this.takeDurable()
    const winner = new Map<string, number>()
    renames.forEach(({ to, directory }, i) => {
      if (!directory || !winner.has(to)) winner.set(to, i)
    })
    for (const [i, { from, to }] of renames.entries()) if (winner.get(to) !== i) fs.rmSync(from, { recursive: true, force: true })
    const todo = [...winner.values()].map((i) => renames[i]!)
    let next = 0
    const worker = async () => {
      while (next < todo.length) {
        const rename = todo[next++]!
        await fs.promises.rename(rename.from, rename.to).catch((error: unknown) => {
          if (!lostToEarlierDirectory(rename, error)) throw error
          return fs.promises.rm(rename.from, { recursive: true, force: true })
        })
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker))
    syncFileSystems(this.fileSystems)
  }

  /** Makes what is staged durable, then puts it in place, durably. */
  commit(): void {
    if (this.renames.length === 0 && this.collections.size === 0) return
    for (const rename of this.takeDurable()) {
      try {
        fs.renameSync(rename.from, rename.to)
      } catch (error) {
        if (!lostToEarlierDirectory(rename, error)) throw error
        fs.rmSync(rename.from, { recursive: true, force: true })
      }
    }
    syncFileSystems(this.fileSystems)
  }

  /** Syncs what is staged, puts the collections staged whole in place, and hands over the renames still to do. */
  private takeDurable(): Array<Rename> {
    syncFileSystems(this.fileSystems)
    for (const [dir, { temporary, existed, used }] of this.collections) {
      // A collection nothing went into is not made (Docker makes these directories on first use).
      if (!existed && !used) fs.rmdirSync(temporary)
      else placeCollection(temporary, dir)
    }
    this.collections = new Map()
    const renames = this.renames
    this.renames = []
    this.targets.clear()
    this.kept.clear()
    return renames
  }
}

/**
 * Renames a collection's temporary onto `dir` (which rename(2) replaces
 * atomically while it is empty). If another writer put entries in `dir`
 * meanwhile, the entries move one by one: files replace theirs, as a file
 * staged alone would, and a directory already there stays, as `stageDirectory`'s.
 */
const placeCollection = (temporary: string, dir: string): void => {
  try {
    fs.renameSync(temporary, dir)
    return
  } catch (error) {
    const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error
  }
  for (const name of fs.readdirSync(temporary)) {
    const from = path.join(temporary, name)
    const to = path.join(dir, name)
    if (fs.lstatSync(to, { throwIfNoEntry: false })?.isDirectory() !== true) fs.renameSync(from, to)
  }
  fs.rmSync(temporary, { recursive: true, force: true })
}

interface Rename {
  readonly from: string
  readonly to: string
  readonly directory: boolean
}

/** A staged directory whose target another writer made first: that one stays. */
const lostToEarlierDirectory = (rename: Rename, error: unknown): boolean => {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined
  return rename.directory && (code === "ENOTEMPTY" || code === "EEXIST")
}
