/**
 * Docker 1.10's layer store metadata under `image/<driver>/layerdb/`: one
 * directory per chain ID (`diff`, `size`, `cache-id`, `parent`,
 * `tar-split.json.gz`), committed as Docker did, by renaming a finished
 * directory out of `tmp/` (or, in a fresh store, with the whole `sha256/`
 * staged by `StagedWrites`); and `mounts/<container>/` for read-write layers.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { copyRegularFileSync, readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import * as path from "node:path"
import type { ChainID, DiffID } from "../Ids.ts"
import { StagedWrites } from "./StagedWrites.ts"
import { makeDirectories, writeFileAtomic } from "./StoreFiles.ts"
import { writeWholeFile } from "../platform/WriteAll.ts"

export const LAYERDB = "layerdb"
const SHA256 = "sha256"
const TMP = "tmp"
const MOUNTS = "mounts"

/** Chain ID of a layer: its diffID for a base layer, else SHA-256 of "<parent chain ID> <diffID>". */
export const chainIdOf = (parent: ChainID | undefined, diffId: DiffID): ChainID =>
  (parent === undefined ? diffId : `sha256:${createHash("sha256").update(`${parent} ${diffId}`).digest("hex")}`) as ChainID

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1)

/** Where a layer's metadata lives. */
export const layerDirectory = (storeRoot: string, chainId: ChainID) => path.join(storeRoot, LAYERDB, SHA256, hexOf(chainId))

/**
 * Registers a legacy layer (`RegisterByGraphID`): nothing happens when the
 * chain ID is already there or staged (a duplicate image keeps the first
 * cache-id). The directory is built in `tmp/`, or straight in `sha256/` when
 * `writes` stages it whole, and joins `writes` (committed here without one).
 */
export const registerLayer = (storeRoot: string, layer: {
  readonly graphId: string
  readonly parent: ChainID | undefined
  readonly diffId: DiffID
  readonly size: number
  readonly tarDataPath: string
  /** The layer's data in a target driver (else the cache ID is the graph ID, as Docker's). */
  readonly cacheId?: string | undefined
}, writes?: StagedWrites): ChainID => {
  const chainId = chainIdOf(layer.parent, layer.diffId)
  const final = layerDirectory(storeRoot, chainId)
  if (layerExists(storeRoot, chainId, writes)) return chainId
  const batch = writes ?? new StagedWrites([storeRoot])
  batch.makeDirectory(path.dirname(final), 0o755)
  // Docker's layer store makes layerdb/tmp for its write sets.
  const tmpRoot = path.join(storeRoot, LAYERDB, TMP)
  batch.makeDirectory(tmpRoot, 0o755)
  // In a fresh store, straight into the staged layerdb/sha256; else a write set in layerdb/tmp, as Docker's.
  const work = batch.makeNewDirectory(final, () => {
    const dir = path.join(tmpRoot, `write-set-${randomBytes(8).toString("hex")}`)
    fs.mkdirSync(dir, { mode: 0o700 })
    return dir
  })
  const mode = 0o644
  try {
    copyRegularFileSync(layer.tarDataPath, path.join(work, "tar-split.json.gz"), mode)
    writeText(path.join(work, "size"), String(layer.size), mode)
    if (layer.parent !== undefined) writeText(path.join(work, "parent"), layer.parent, mode)
    writeText(path.join(work, "diff"), layer.diffId, mode)
    writeText(path.join(work, "cache-id"), layer.cacheId ?? layer.graphId, mode)
  } catch (error) {
    fs.rmSync(work, { recursive: true, force: true })
    throw error
  }
  batch.stageNewDirectory(final, work)
  if (writes === undefined) batch.commit()
  return chainId
}

const encoder = new TextEncoder()

/** A new file in a layer directory being made (`O_EXCL`, no truncate: `writeFileSync` costs an `ftruncate` more). */
const writeText = (file: string, text: string, mode: number): void =>
  writeWholeFile(file, encoder.encode(text), mode, fs.constants.O_EXCL)

/** The layer store's directory of one entry per layer, staged whole by a batch that may fill it (see `StagedWrites`). */
export const stageLayerCollection = (storeRoot: string, writes: StagedWrites): void =>
  writes.stageCollection(path.join(storeRoot, LAYERDB, SHA256), 0o755)

/** A layer's chain ID is registered (or staged in `writes`). */
export const layerExists = (storeRoot: string, chainId: ChainID, writes?: StagedWrites): boolean => {
  const directory = layerDirectory(storeRoot, chainId)
  return (writes?.isStaged(directory) ?? false) || fs.lstatSync(directory, { throwIfNoEntry: false }) !== undefined
}

/** Records a container's read-write layer (`CreateRWLayerByGraphID`'s `saveMount`). */
export const saveMount = async (storeRoot: string, mount: {
  readonly name: string
  readonly mountId: string
  readonly initId: string | undefined
  readonly parent: ChainID | undefined
}): Promise<void> => {
  const dir = path.join(storeRoot, LAYERDB, MOUNTS, mount.name)
  await makeDirectories(dir, 0o755)
  await writeFileAtomic(path.join(dir, "mount-id"), mount.mountId, 0o644)
  if (mount.initId !== undefined) await writeFileAtomic(path.join(dir, "init-id"), mount.initId, 0o644)
  if (mount.parent !== undefined) await writeFileAtomic(path.join(dir, "parent"), mount.parent, 0o644)
}

/** The mount recorded for a container, if any (its mount ID and parent). */
export const readMount = async (storeRoot: string, name: string) => {
  const dir = path.join(storeRoot, LAYERDB, MOUNTS, name)
  const read = (file: string) => readSmallText(path.join(dir, file), SMALL_FILE_LIMIT.value).catch(() => undefined)
  return { mountId: await read("mount-id"), parent: await read("parent") }
}

/** A registered layer's cache ID (its data's name in the driver). */
export const readCacheId = (storeRoot: string, chainId: ChainID): Promise<string | undefined> =>
  readSmallText(path.join(layerDirectory(storeRoot, chainId), "cache-id"), SMALL_FILE_LIMIT.value).catch(() => undefined)

/** Every cache ID, mount ID and init ID the store names: the driver data that is in use. */
export const driverIdsInUse = async (storeRoot: string): Promise<Set<string>> => {
  const ids = new Set<string>()
  const read = (file: string) => readSmallText(file, SMALL_FILE_LIMIT.value).catch(() => undefined)
  const layers = path.join(storeRoot, LAYERDB, SHA256)
  for (const hex of await fs.promises.readdir(layers).catch(() => [] as Array<string>)) {
    const id = await read(path.join(layers, hex, "cache-id"))
    if (id !== undefined) ids.add(id)
  }
  const mounts = path.join(storeRoot, LAYERDB, MOUNTS)
  for (const name of await fs.promises.readdir(mounts).catch(() => [] as Array<string>)) {
    for (const file of ["mount-id", "init-id"]) {
      const id = await read(path.join(mounts, name, file))
      if (id !== undefined) ids.add(id)
    }
  }
  return ids
}
