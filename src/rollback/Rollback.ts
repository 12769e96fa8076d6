/**
 * `rollback`: takes the root back to its state before `migrate` (and, with
 * `checksums`, before `checksums`) by removing exactly what the journal says
 * they created: the new store, the markers, the `config.v2.json` files
 * written for containers, the helper files. Never layer data, never anything
 * else.
 *
 * What a newer daemon did since (images in the store that `migrate` did not
 * make, containers it created, `config.v2.json` files it rewrote) is listed
 * and refused unless `force`; with `force` the same things are removed (only
 * ours) and the report says what the old daemon will not see. Idempotent and
 * resumable: every removal tolerates what is already gone, and the journal
 * goes last.
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { MIGRATION_DIFF_ID, MIGRATION_SIZE, MIGRATION_TAR_DATA } from "../legacy/LegacyGraph.ts"
import { CONFIG_V2, CONTAINERS_DIR, markerNames, MIGRATION_IMAGES } from "../migrate/Migrate.ts"
import { OVERLAY2 } from "../overlay2/Overlay2Layout.ts"
import { readSmallFileSync, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { writeAll } from "../platform/WriteAll.ts"
import { JOURNAL, type JournalEntry, readJournal, record } from "./Journal.ts"

/** What a newer daemon did since `migrate`, found by `rollback`. */
export interface SinceMigrate {
  readonly kind: "image" | "container" | "config"
  readonly item: string
  readonly detail: string
}

export interface RollbackReport {
  /** Paths removed (relative to the root). */
  readonly removed: ReadonlyArray<string>
  readonly sinceMigrate: ReadonlyArray<SinceMigrate>
  /** True when it refused (changes since `migrate`, no `force`): nothing was removed. */
  readonly refused: boolean
  /** No journal: nothing of ours is there. */
  readonly nothingToDo: boolean
}

/** The journal cannot be read, or a removal failed. */
export class RollbackError extends Schema.TaggedError<RollbackError>()("RollbackError", {
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot roll back: ${this.detail}`
  }
}

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/** `image/` of a Docker root (the graph's, `image`, or another root's with `--target-root`, `../new-root/image`). */
const isImageDirectory = (relative: string) => path.basename(relative) === "image"
/** A store `image/<driver>` of a Docker root. */
const isStoreDirectory = (relative: string) => isImageDirectory(path.dirname(relative))
const list = (dir: string) => {
  try {
    return fs.readdirSync(dir)
  } catch {
    return []
  }
}

/** What a newer daemon added or changed in what `migrate` made. */
const changesSince = (root: string, entries: ReadonlyArray<JournalEntry>): Array<SinceMigrate> => {
  const found: Array<SinceMigrate> = []
  const migratedImages = new Set<string>()
  // The graph's own store's marker, and the marker of a store written for another driver (`--target-driver`).
  for (const name of [MIGRATION_IMAGES, markerNames(OVERLAY2).images]) {
    try {
      const marker = readSmallFileSync(path.join(root, name), SMALL_FILE_LIMIT.repositories)
      for (const id of Object.values(JSON.parse(new TextDecoder().decode(marker)) as Record<string, string>)) migratedImages.add(id)
    } catch {
      // no marker: every image in a store we made is counted below
    }
  }
  for (const entry of entries) {
    if (entry.op !== "created" || entry.kind !== "directory" || !isStoreDirectory(entry.path)) continue
    const content = path.join(root, entry.path, "imagedb", "content", "sha256")
    for (const hex of list(content)) {
      if (!migratedImages.has(`sha256:${hex}`)) found.push({ kind: "image", item: `sha256:${hex}`, detail: `in ${entry.path}, made since migrate` })
    }
  }
  // Containers in the graph's root, and in another root written by --target-root.
  const ours = new Map<string, Map<string, string>>([[CONTAINERS_DIR, new Map()]])
  for (const entry of entries) {
    if (entry.op !== "container") continue
    const dir = entry.dir ?? CONTAINERS_DIR
    ours.set(dir, (ours.get(dir) ?? new Map<string, string>()).set(entry.id, entry.sha256))
  }
  for (const [dir, written] of ours) found.push(...containerChanges(root, dir, written))
  return found
}

/** Containers in `dir` (relative to the root) created or whose `config.v2.json` changed since `migrate` wrote `written`. */
const containerChanges = (root: string, dir: string, ours: ReadonlyMap<string, string>): Array<SinceMigrate> => {
  const found: Array<SinceMigrate> = []
  for (const id of list(path.join(root, dir))) {
    const v2 = path.join(root, dir, id, CONFIG_V2)
    if (!fs.existsSync(v2)) continue
    const written = ours.get(id)
    const hadLegacy = fs.existsSync(path.join(root, CONTAINERS_DIR, id, "config.json"))
    if (written === undefined) {
      if (!hadLegacy) found.push({ kind: "container", item: id, detail: "created since migrate: the old daemon will not see it" })
      continue
    }
    let content: Uint8Array | undefined
    try {
      content = readSmallFileSync(v2, SMALL_FILE_LIMIT.config)
    } catch {
      content = undefined // not a small regular file: not what we wrote
    }
    if (content === undefined || sha256Hex(content) !== written) {
      found.push({ kind: "config", item: id, detail: `${CONFIG_V2} changed since migrate (the old daemon reads its config.json, which has not changed)` })
    }
  }
  return found
}

/** Rolls back what the journal records; `checksums` also removes helper files. */
export const rollback = async (root: string, options: { readonly checksums: boolean; readonly force: boolean }): Promise<RollbackReport> => {
  let entries: Array<JournalEntry>
  try {
    entries = await readJournal(root)
  } catch (error) {
    throw new RollbackError({ detail: error instanceof Error ? error.message : String(error) })
  }
  const journal = path.join(root, JOURNAL)
  fs.rmSync(`${journal}.tmp`, { force: true }) // left by a rollback killed while rewriting the journal
  if (entries.length === 0) return { removed: [], sinceMigrate: [], refused: false, nothingToDo: true }
  const resumed = entries.at(-1)?.op === "rollback"
  const sinceMigrate = resumed ? [] : changesSince(root, entries)
  if (sinceMigrate.length > 0 && !options.force) return { removed: [], sinceMigrate, refused: true, nothingToDo: false }
  if (!resumed) record(root, { op: "rollback" })

  const removed: Array<string> = []
  const remove = (relative: string, recursive = false) => {
    const full = path.join(root, relative)
    try {
      fs.lstatSync(full)
    } catch {
      return // already gone (an earlier, interrupted rollback)
    }
    try {
      fs.rmSync(full, { recursive, force: true })
    } catch (error) {
      throw new RollbackError({ detail: `${full}: ${error instanceof Error ? error.message : String(error)}` })
    }
    removed.push(relative)
  }
  // Newest first, so a crash leaves a state the next rollback finishes.
  for (const entry of [...entries].reverse()) {
    if (entry.op === "container") remove(path.join(entry.dir ?? CONTAINERS_DIR, entry.id, CONFIG_V2))
    else if (entry.op === "created" && entry.kind === "file") remove(entry.path)
    else if (entry.op === "created" && !isImageDirectory(entry.path)) remove(entry.path, true)
    else if (entry.op === "helpers" && options.checksums) {
      // `.migration-diffid` first: without it the layer counts as not done.
      for (const name of [MIGRATION_DIFF_ID, MIGRATION_SIZE, MIGRATION_TAR_DATA]) remove(path.join("graph", entry.layer, name))
    }
  }
  // `image/` itself (each root's), if we made it, once only our lock could be left in it.
  for (const entry of entries) {
    if (entry.op !== "created" || !isImageDirectory(entry.path)) continue
    const left = list(path.join(root, entry.path)).filter((name) => name !== ".cas-migrator.lock")
    if (left.length === 0) remove(entry.path, true)
  }
  // The journal goes last; kept (with only helper entries) when helper files stay.
  const keep = options.checksums ? [] : entries.filter((e) => e.op === "helpers")
  if (keep.length === 0) fs.rmSync(journal, { force: true })
  else {
    const fd = fs.openSync(`${journal}.tmp`, "w", 0o600)
    try {
      writeAll(fd, new TextEncoder().encode(keep.map((e) => `${JSON.stringify(e)}\n`).join("")))
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(`${journal}.tmp`, journal)
  }
  return { removed, sinceMigrate, refused: false, nothingToDo: false }
}
