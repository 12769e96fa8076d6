/**
 * The directories of Docker's overlay2 driver (`<root>/overlay2`), laid out
 * as its `create` lays them out: `<id>/` (0710) with `diff/` (0755), `link`
 * (a 26-character base32 short ID, 0644) and, for a child, `work/` (0700) and
 * `lower` (`l/<parent link>:<parent's lower>`, 0644), the parent marked with
 * an empty `committed` (0600); `l/<short ID>` a symlink to `../<id>/diff`.
 *
 * A layer is made in a temporary directory (`.tmp-<id>`) and renamed into
 * place whole; its `l/` link follows the rename. What a killed run left (a
 * temporary directory, a finished directory no store names, a link to
 * nothing) is removed by `sweepOverlay2`; only directories the journal says
 * we made are ever removed.
 *
 * @module
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { readJournal, record, recordIfNew } from "../rollback/Journal.ts"
import { TEMPORARY_PREFIX } from "../store/StoreFiles.ts"

export const OVERLAY2 = "overlay2"
export const LINK_DIR = "l"
export const DIFF_DIR = "diff"
export const WORK_DIR = "work"
export const LINK_FILE = "link"
export const LOWER_FILE = "lower"
export const COMMITTED_FILE = "committed"
/** overlay2's `idLength`: short IDs in `l/` keep the mount options under a page. */
export const SHORT_ID_LENGTH = 26

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

/** A new short ID: `GenerateID(26)`, base32 of random bytes cut to 26 characters. */
export const newShortId = (): string => {
  const bytes = randomBytes(Math.ceil((SHORT_ID_LENGTH * 5) / 8))
  let bits = 0
  let value = 0
  let out = ""
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  return out.slice(0, SHORT_ID_LENGTH)
}

/** A new cache or mount ID: 64 random hex digits, as Docker's layer store makes them. */
export const newLayerId = (): string => randomBytes(32).toString("hex")

const mkdirMode = (dir: string, mode: number) => {
  fs.mkdirSync(dir, { mode })
  fs.chmodSync(dir, mode) // exact, whatever the umask
}

/** `overlay2/` (0710) and `overlay2/l/` (0700), recorded for `rollback` when we make them. */
export const openOverlay2Home = (root: string, home: string): void => {
  if (!fs.existsSync(home)) {
    recordIfNew(root, path.relative(root, home), "directory")
    mkdirMode(home, 0o710)
  }
  const links = path.join(home, LINK_DIR)
  if (!fs.existsSync(links)) mkdirMode(links, 0o700)
}

/** A layer directory being made: `diff` is where its tar goes. */
export interface LayerUnderConstruction {
  readonly id: string
  readonly temporary: string
  readonly diff: string
}

/**
 * Starts layer `id` (with parent layer `parent`, if any): recorded in the
 * journal, then made under a temporary name with its `diff/` (empty), `link`,
 * and for a child `work/` and `lower`.
 */
export const beginLayer = (root: string, home: string, id: string, parent: string | undefined): LayerUnderConstruction => {
  record(root, { op: "created", path: path.relative(root, path.join(home, id)), kind: "directory" })
  const temporary = path.join(home, `${TEMPORARY_PREFIX}${id}`)
  fs.rmSync(temporary, { recursive: true, force: true })
  mkdirMode(temporary, 0o710)
  const diff = path.join(temporary, DIFF_DIR)
  mkdirMode(diff, 0o755)
  fs.writeFileSync(path.join(temporary, LINK_FILE), newShortId(), { mode: 0o644 })
  if (parent !== undefined) {
    mkdirMode(path.join(temporary, WORK_DIR), 0o700)
    const parentDir = path.join(home, parent)
    const parentLink = fs.readFileSync(path.join(parentDir, LINK_FILE), "utf8")
    const parentLower = fs.existsSync(path.join(parentDir, LOWER_FILE)) ? fs.readFileSync(path.join(parentDir, LOWER_FILE), "utf8") : undefined
    const lower = [path.join(LINK_DIR, parentLink), ...(parentLower === undefined ? [] : [parentLower])].join(":")
    fs.writeFileSync(path.join(temporary, LOWER_FILE), lower, { mode: 0o644 })
  }
  return { id, temporary, diff }
}

/** Finishes a layer: its parent marked committed, renamed into place, its `l/` link made. */
export const commitLayer = (root: string, home: string, layer: LayerUnderConstruction, parent: string | undefined): void => {
  // An empty file has no half-written state: no temporary name needed.
  if (parent !== undefined) fs.writeFileSync(path.join(home, parent, COMMITTED_FILE), "", { mode: 0o600 })
  const final = path.join(home, layer.id)
  fs.renameSync(layer.temporary, final)
  ensureLink(root, home, layer.id)
}

/** The `l/<short ID>` symlink of a finished layer directory (made again if a kill came between rename and link). */
export const ensureLink = (root: string, home: string, id: string): void => {
  const short = fs.readFileSync(path.join(home, id, LINK_FILE), "utf8")
  const link = path.join(home, LINK_DIR, short)
  const wanted = path.join("..", id, DIFF_DIR)
  const current = (() => {
    try {
      return fs.readlinkSync(link)
    } catch {
      return undefined
    }
  })()
  if (current === wanted) return
  if (current !== undefined) fs.rmSync(link, { force: true })
  else recordIfNew(root, path.relative(root, link), "file")
  fs.symlinkSync(wanted, link)
}

/** Gives up on a layer being made. */
export const abandonLayer = (layer: LayerUnderConstruction): void => fs.rmSync(layer.temporary, { recursive: true, force: true })

/**
 * What a killed run left in `home`: temporary layer directories, and finished
 * ones that we made (the journal says so) but that `inUse` does not name (the
 * kill came before the store recorded them), with their `l/` links; links
 * that lead nowhere and point into a directory we made.
 */
export const sweepOverlay2 = async (root: string, home: string, inUse: ReadonlySet<string>): Promise<void> => {
  if (!fs.existsSync(home)) return
  const ours = new Set(
    (await readJournal(root))
      .filter((entry) => entry.op === "created" && entry.kind === "directory")
      .map((entry) => (entry.op === "created" ? path.join(root, entry.path) : "")),
  )
  for (const name of fs.readdirSync(home)) {
    const full = path.join(home, name)
    if (name.startsWith(TEMPORARY_PREFIX)) fs.rmSync(full, { recursive: true, force: true })
    else if (name !== LINK_DIR && ours.has(full) && !inUse.has(name)) fs.rmSync(full, { recursive: true, force: true })
  }
  const links = path.join(home, LINK_DIR)
  for (const name of fs.readdirSync(links)) {
    const link = path.join(links, name)
    let target: string
    try {
      target = fs.readlinkSync(link)
    } catch {
      continue
    }
    const layerDir = path.join(home, path.basename(path.dirname(target)))
    if (ours.has(layerDir) && !fs.existsSync(path.join(links, target))) fs.rmSync(link, { force: true })
  }
}

/** A layer's `link` short ID, if the directory is finished. */
export const readShortId = (home: string, id: string): Promise<string | undefined> =>
  readSmallText(path.join(home, id, LINK_FILE), SMALL_FILE_LIMIT.value).catch(() => undefined)
