/**
 * Before `migrate --target-driver` writes anything: the target needs about
 * the unpacked size of the layers not yet migrated (Docker 1.9's `layersize`,
 * else the `.migration-size` helper file), plus a margin for directories and
 * metadata; too little free space is refused up front with both figures.
 *
 * Containers not yet migrated add what is copied for them: their layers'
 * changes where the driver keeps them apart (aufs's diff, overlay's upper;
 * a snapshot driver's are found only by comparing whole trees, so they are
 * not counted), and with `--target-root` elsewhere their files (logs
 * included) but the legacy config.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { type GraphId, parseGraphId } from "../Ids.ts"
import { StorageDriver } from "../driver/StorageDriver.ts"
import { graphPaths, listGraph } from "../legacy/LegacyGraph.ts"
import { CONFIG_V2, CONTAINERS_DIR, isCopiedContainerFile } from "../migrate/Migrate.ts"
import { childPath, rawFiles } from "../platform/RawFiles.ts"
import { readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"

/** The target file system has too little free space for the layers. */
export class TargetSpaceError extends Schema.TaggedError<TargetSpaceError>()("TargetSpaceError", {
  target: Schema.String,
  neededBytes: Schema.Number,
  freeBytes: Schema.Number,
}) {
  override get message(): string {
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`
    return `Not enough space in ${this.target}: the unpacked layers need about ${mb(this.neededBytes)} ` +
      `(${this.neededBytes} bytes), ${mb(this.freeBytes)} (${this.freeBytes} bytes) are free`
  }
}

/** Per layer, for directories, `link`, `lower` and the store's metadata. */
const PER_LAYER_BYTES = 64 * 1024

/** Bytes the unpacked layers not in `skip` need, from the sizes the graph records. */
export const neededBytes = (root: string, skip: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const listing = yield* listGraph(root)
    let total = 0
    for (const id of listing.ids) {
      if (skip.has(id)) continue
      const paths = graphPaths(root, id)
      const read = (file: string) => readSmallText(file, SMALL_FILE_LIMIT.value).then(Number, () => Number.NaN)
      let size = yield* Effect.promise(() => read(`${paths.dir}/layersize`))
      if (!Number.isFinite(size) || size < 0) size = yield* Effect.promise(() => read(paths.size))
      total += (Number.isFinite(size) && size > 0 ? size : 0) + PER_LAYER_BYTES
    }
    return total
  })

/** Sizes of the regular files under `dir` (not following symlinks); 0 when it is not there; what cannot be listed counts nothing. */
export const treeBytes = (dir: string): number => {
  let total = 0
  const walk = (at: Uint8Array) => {
    let names: Array<Uint8Array>
    try {
      names = rawFiles.readdir(at)
    } catch {
      return
    }
    for (const name of names) {
      const child = childPath(at, name)
      const stat = rawFiles.lstat(child)
      if (stat?.kind === "file") total += stat.size
      else if (stat?.kind === "directory") walk(child)
    }
  }
  const root = new Uint8Array(Buffer.from(dir))
  if (rawFiles.lstat(root)?.kind === "directory") walk(root)
  return total
}

/**
 * Bytes the containers of `root` that are not migrated into `targetRoot`
 * yet (no `config.v2.json` there) need in it: each layer's changes where the
 * driver keeps them apart, plus the per-layer margin, and, when `targetRoot`
 * is another root, the files migrate copies (all but the configs). A layer
 * the driver cannot show counts nothing here: migrate reports it.
 */
export const containerBytes = (root: string, targetRoot: string) =>
  Effect.gen(function* () {
    const driver = yield* StorageDriver
    const dir = path.join(root, CONTAINERS_DIR)
    const names = yield* Effect.promise(() => fs.promises.readdir(dir).catch(() => [] as Array<string>))
    let total = 0
    for (const name of names) {
      const id = parseGraphId(name)
      if (id === undefined) continue
      const done = yield* Effect.promise(() => fs.promises.stat(path.join(targetRoot, CONTAINERS_DIR, name, CONFIG_V2)).then(() => true, () => false))
      if (done) continue
      for (const layer of [id, `${id}-init` as GraphId]) {
        if (!(yield* Effect.orElseSucceed(driver.exists(layer), () => false))) continue
        total += PER_LAYER_BYTES + (yield* changesBytes(layer))
      }
      if (targetRoot !== root) total += yield* Effect.sync(() => containerFilesBytes(path.join(dir, name)))
    }
    return total
  })

/** What a container layer's changes take, where the driver keeps them apart; 0 for a snapshot driver's. */
const changesBytes = (layer: GraphId) =>
  Effect.gen(function* () {
    const driver = yield* StorageDriver
    if (driver.containerUpper !== undefined) {
      const upper = yield* Effect.orElseSucceed(driver.containerUpper(layer), () => undefined)
      return upper === undefined ? 0 : treeBytes(upper)
    }
    if (driver.layerFiles !== "aufs-diff") return 0
    return yield* Effect.scoped(Effect.map(driver.view(layer), (view) => treeBytes(view.root))).pipe(Effect.orElseSucceed(() => 0))
  })

const containerFilesBytes = (dir: string): number => {
  let total = 0
  let entries: Array<fs.Dirent>
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  for (const entry of entries) {
    if (!entry.isFile() || !isCopiedContainerFile(entry.name)) continue
    total += fs.statSync(path.join(dir, entry.name), { throwIfNoEntry: false })?.size ?? 0
  }
  return total
}

/** Bytes free to an unprivileged writer on `target`'s file system (unknown: infinite, nothing is refused on a guess). */
export const freeBytes = (target: string): Effect.Effect<number> =>
  Effect.promise(() => fs.promises.statfs(target).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY))

/** Fails with the figures when `target`'s file system has less free space than `needed`. */
export const checkSpace = (target: string, needed: number): Effect.Effect<void, TargetSpaceError> =>
  Effect.gen(function* () {
    const free = yield* freeBytes(target)
    if (free < needed) return yield* new TargetSpaceError({ target, neededBytes: needed, freeBytes: free })
  })
