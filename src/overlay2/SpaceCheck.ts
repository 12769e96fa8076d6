/**
 * Before `migrate --target-driver` writes anything: the target needs about
 * the unpacked size of the layers not yet migrated (Docker 1.9's `layersize`,
 * else the `.migration-size` helper file), plus a margin for directories and
 * metadata; too little free space is refused up front with both figures.
 *
 * @module
 */
import * as fs from "node:fs"
import { Effect, Schema } from "effect"
import { graphPaths, listGraph } from "../legacy/LegacyGraph.ts"
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

/** Bytes free to an unprivileged writer on `target`'s file system (unknown: infinite, nothing is refused on a guess). */
export const freeBytes = (target: string): Effect.Effect<number> =>
  Effect.promise(() => fs.promises.statfs(target).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY))

/** Fails with the figures when `target`'s file system has less free space than `needed`. */
export const checkSpace = (target: string, needed: number): Effect.Effect<void, TargetSpaceError> =>
  Effect.gen(function* () {
    const free = yield* freeBytes(target)
    if (free < needed) return yield* new TargetSpaceError({ target, neededBytes: needed, freeBytes: free })
  })
