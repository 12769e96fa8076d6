/**
 * One legacy layer's tar, written by a layer worker straight at its place in
 * a file outside the Docker root (a member of the archive, a blob of the
 * layout) while it is hashed: exactly the bytes whose SHA-256 is its diffID. Where the layer's helper files are
 * there (`.migration-diffid`, trusted as Docker trusted them), the tar is
 * rebuilt from `.migration-tardata` and the driver's files and must hash to
 * that diffID; otherwise it is computed as `checksums` computes it (tar-split,
 * else regenerated), with nothing written into the root.
 *
 * @module
 */
import * as fs from "node:fs"
import { Effect, Schema } from "effect"
import type { TarOutput } from "../hash/HashJob.ts"
import type { HashPool } from "../hash/HashPool.ts"
import { type DiffID, diffIdFromHex, type GraphId, parseDiffId } from "../Ids.ts"
import { graphPaths } from "../legacy/LegacyGraph.ts"
import { readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { regenerationParentRoot, StorageDriver } from "../driver/StorageDriver.ts"

/** A layer's tar could not be produced, or its bytes do not hash to the diffID its helper files declare. */
export class LayerTarError extends Schema.TaggedError<LayerTarError>()("LayerTarError", {
  layer: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot export layer ${this.layer}: ${this.detail}`
  }
}

/** A layer's tar, written, and what it is. */
export interface LayerTar {
  readonly diffId: DiffID
  /** Bytes in the tar. */
  readonly tarBytes: number
  /** How the bytes were made. */
  readonly path: "helper-files" | "tarsplit" | "fallback"
}

/** The diffID a layer's helper files declare (none there: undefined); one that is not a digest fails the layer. */
export const readDeclaredDiffId = (
  diffIdPath: string,
  failed: (detail: string) => LayerTarError,
): Effect.Effect<DiffID | undefined, LayerTarError> =>
  Effect.gen(function* () {
    const declaredText = yield* Effect.promise(() => readSmallText(diffIdPath, SMALL_FILE_LIMIT.value).catch(() => undefined))
    if (declaredText === undefined) return undefined
    const declared = parseDiffId(declaredText)
    if (declared === undefined) return yield* failed(`${diffIdPath}: invalid digest ${JSON.stringify(declaredText.slice(0, 80))}`)
    return declared
  })

/**
 * Writes the tar of layer `id` (whose parent is `parent`, `""` for none) at
 * `output` (bytes past its end may be left from a tar-split attempt that
 * failed: the caller cuts them off). `scratch` is a directory outside the
 * root for the regenerated tar-split, which `export` does not keep.
 */
export const writeLayerTar = (
  pool: HashPool,
  root: string,
  id: GraphId,
  parent: string,
  output: TarOutput,
  scratch: string,
): Effect.Effect<LayerTar, LayerTarError, StorageDriver> =>
  Effect.gen(function* () {
    const paths = graphPaths(root, id)
    const failed = (detail: string) => new LayerTarError({ layer: id, detail })
    const declared = yield* readDeclaredDiffId(paths.diffId, failed)
    const driver = yield* StorageDriver
    const assemble = (tarDataPath: string) =>
      Effect.scoped(Effect.flatMap(
        Effect.mapError(driver.view(id), (error) => failed(error.message)),
        (view) => Effect.promise(() => pool.hash(tarDataPath, view.root, output)),
      ))

    if (declared !== undefined) {
      // Helper files are trusted as Docker trusted them; the bytes must still hash to what they declare.
      const assembled = yield* assemble(paths.migrationTarData)
      if (!assembled.ok) return yield* failed(`its tar cannot be rebuilt from ${paths.migrationTarData}: ${assembled.detail}`)
      const diffId = diffIdFromHex(assembled.sha256)
      if (diffId !== declared) return yield* failed(`its tar hashes to ${diffId}, not to ${declared} as ${paths.diffId} says`)
      return { diffId, tarBytes: assembled.tarBytes, path: "helper-files" } satisfies LayerTar
    }

    const viaTarSplit = yield* assemble(paths.tarData)
    if (viaTarSplit.ok) return { diffId: diffIdFromHex(viaTarSplit.sha256), tarBytes: viaTarSplit.tarBytes, path: "tarsplit" } satisfies LayerTar
    if (viaTarSplit.reason === "OutputFailed") return yield* failed(viaTarSplit.detail)
    yield* Effect.logWarning(`layer ${id}: tar-split failed (${viaTarSplit.detail}); regenerating its tar`)
    const tarDataOut = `${scratch}/${id}.tar-split.gz`
    const regenerated = yield* Effect.scoped(Effect.gen(function* () {
      const view = yield* Effect.mapError(driver.view(id), (error) => failed(error.message))
      const parentRoot = yield* Effect.mapError(regenerationParentRoot(driver, parent), failed)
      return yield* Effect.promise(() => pool.regenerate({ root: view.root, parentRoot, layerFiles: driver.layerFiles, tarDataOut }, output))
    })).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(tarDataOut, { force: true }))))
    if (!regenerated.ok) return yield* failed(regenerated.reason === "OutputFailed" ? regenerated.detail : `regenerating its tar failed: ${regenerated.detail}`)
    return { diffId: diffIdFromHex(regenerated.sha256), tarBytes: regenerated.tarBytes, path: "fallback" } satisfies LayerTar
  })
