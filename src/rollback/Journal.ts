/**
 * What `checksums` and `migrate` created in a Docker root, recorded before
 * each creation (write-ahead), so that `rollback` can remove exactly that and
 * nothing else, even after a crash at any moment. One JSON object per line in
 * `<root>/.cas-migrator-journal`, appended and synced; a torn last line (a
 * crash while appending) is ignored, as the creation it announced had not
 * begun.
 *
 * @module
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { readSmallText } from "../platform/RegularFile.ts"
import { writeAll } from "../platform/WriteAll.ts"

export const JOURNAL = ".cas-migrator-journal"

export type JournalEntry =
  /**
   * A directory or file (relative to the root) that did not exist and is about to be made; with
   * `--target-root` elsewhere, the paths there are relative too (`../new-root/...`).
   */
  | { readonly op: "created"; readonly path: string; readonly kind: "directory" | "file" }
  /**
   * A container's `config.v2.json` about to be written with this content (its SHA-256), in `dir` (relative
   * to the root; `containers` when absent, another root's with `--target-root`).
   */
  | { readonly op: "container"; readonly id: string; readonly sha256: string; readonly dir?: string }
  /** A layer's helper files (`graph/<id>/.migration-*`) about to be written. */
  | { readonly op: "helpers"; readonly layer: string }
  /**
   * A rollback that checked what changed since `migrate` (and went on) is about to remove things. A
   * rollback killed after it resumes without checking again: what it already removed (the markers
   * first) would otherwise make the store look changed by a newer daemon.
   */
  | { readonly op: "rollback" }

/** Appends `entry` and syncs it before the caller creates anything. */
export const record = (root: string, entry: JournalEntry): void => {
  const fd = fs.openSync(path.join(root, JOURNAL), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600)
  try {
    writeAll(fd, new TextEncoder().encode(`${JSON.stringify(entry)}\n`))
    fs.fdatasyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Records that `relative` is about to be created, unless it exists already (then it is not ours to remove). */
export const recordIfNew = (root: string, relative: string, kind: "directory" | "file"): void => {
  if (!fs.existsSync(path.join(root, relative))) record(root, { op: "created", path: relative, kind })
}

/** The journal's entries in order (none when there is no journal). */
export const readJournal = async (root: string): Promise<Array<JournalEntry>> => {
  let text: string
  try {
    text = await readSmallText(path.join(root, JOURNAL), 256 << 20)
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT") return []
    throw error
  }
  const entries: Array<JournalEntry> = []
  const lines = text.split("\n")
  for (const [index, line] of lines.entries()) {
    if (line === "") continue
    try {
      entries.push(JSON.parse(line) as JournalEntry)
    } catch {
      if (index === lines.length - 1) break // torn by a crash while appending
      throw new Error(`${path.join(root, JOURNAL)}: line ${index + 1} is not JSON`)
    }
  }
  return entries
}
