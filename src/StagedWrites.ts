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
 * @module
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { syncFileSystems } from "./platform/SyncFileSystem.ts"
import { writeAll } from "./platform/WriteAll.ts"
import { TEMPORARY_PREFIX } from "./StoreFiles.ts"

const encoder = new TextEncoder()

export class StagedWrites {
  private renames: Array<Rename> = []
  private readonly targets = new Set<string>()
  private readonly kept = new Map<string, Uint8Array>()
  private readonly directories = new Set<string>()

  /** `fileSystems`: a path on each file system written to (all are synced at `commit`). */
  constructor(private readonly fileSystems: ReadonlyArray<string>) {}

  /**
   * Writes `data` beside `target` under a temporary name, renamed to `target`
   * at `commit`. With `keep`, the bytes stay readable through `stagedBytes`
   * until then (for a file read, changed and written again in one batch).
   */
  writeFile(target: string, data: string | Uint8Array, mode: number, keep = false): void {
    const bytes = typeof data === "string" ? encoder.encode(data) : data
    const temporary = path.join(path.dirname(target), `${TEMPORARY_PREFIX}${path.basename(target)}-${randomBytes(6).toString("hex")}`)
    const fd = fs.openSync(temporary, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode)
    try {
      writeAll(fd, bytes)
    } catch (error) {
      fs.closeSync(fd)
      fs.rmSync(temporary, { force: true })
      throw error
    }
    fs.closeSync(fd)
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
    fs.mkdirSync(dir, { recursive: true, mode })
    this.directories.add(dir)
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
    if (this.renames.length === 0) return
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
    if (this.renames.length === 0) return
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

  /** Syncs what is staged and hands over the renames still to do. */
  private takeDurable(): Array<Rename> {
    syncFileSystems(this.fileSystems)
    const renames = this.renames
    this.renames = []
    this.targets.clear()
    this.kept.clear()
    return renames
  }
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
