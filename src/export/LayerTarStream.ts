/**
 * One legacy layer's tar streamed in this thread to a sink (the overlay2
 * target unpacks it as it comes): the same bytes, the same trust in helper
 * files and the same tar-split-then-regenerate order as `writeLayerTar`,
 * which writes through the hash pool's workers instead.
 *
 * @module
 */
import { Effect } from "effect"
import { type Crc64Engine, makeCrc64Engine } from "../crc/Crc64Engine.ts"
import { type DiffID, diffIdFromHex, type GraphId } from "../Ids.ts"
import { LayerRoot } from "../tar/LayerPath.ts"
import { graphPaths } from "../legacy/LegacyGraph.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { regenerateLayer } from "../tar/RegenerateLayer.ts"
import { regenerationParentRoot, StorageDriver } from "../driver/StorageDriver.ts"
import { AssembleFailure, assembleLayer } from "../tar/TarSplitAssembler.ts"
import { type LayerTar, LayerTarError, readDeclaredDiffId } from "./LayerTar.ts"

let engine: Crc64Engine | undefined

/** Where a layer's tar bytes go; `discard` undoes a partial write (before a retry, or on failure). */
export interface LayerSink {
  readonly write: (bytes: Uint8Array) => void
  readonly close: () => void
  readonly discard: () => void
}

/** A layer's tar streamed to a sink, and what it is. */
export type StreamedLayerTar = LayerTar

/**
 * Streams the tar of layer `id` into sinks from `openSink` (a new one for
 * each attempt: tar-split, then the regenerated tar; a failed attempt's sink
 * is discarded, the successful one closed).
 */
export const streamLayerTar = (
  root: string,
  id: GraphId,
  parent: string,
  openSink: () => LayerSink,
  /** Keep a tar that does not hash to the diffID the helper files declare (Docker trusted them), calling this. */
  onDeclaredMismatch?: ((declared: DiffID, actual: DiffID) => void) | undefined,
): Effect.Effect<StreamedLayerTar, LayerTarError, StorageDriver> =>
  Effect.gen(function* () {
    const paths = graphPaths(root, id)
    const failed = (detail: string) => new LayerTarError({ layer: id, detail })
    const declared = yield* readDeclaredDiffId(paths.diffId, failed)
    const driver = yield* StorageDriver
    engine ??= makeCrc64Engine()
    const crc = engine
    let sink: LayerSink | undefined

    const assemble = (tarDataPath: string) =>
      Effect.scoped(Effect.gen(function* () {
        const view = yield* Effect.mapError(driver.view(id), (error) => failed(error.message))
        const opened = yield* Effect.try({ try: openSink, catch: (error) => new AssembleFailure("ReadError", errorMessage(error)) })
        sink = opened
        return yield* Effect.tryPromise({
          try: () => assembleLayer({ tarDataPath, root: new LayerRoot(view.root), engine: crc, onBytes: opened.write }),
          catch: (error) => (error instanceof AssembleFailure ? error : new AssembleFailure("ReadError", errorMessage(error))),
        }).pipe(Effect.tap(() => Effect.try({ try: opened.close, catch: (error) => new AssembleFailure("ReadError", errorMessage(error)) })))
      }))
    const discard = Effect.sync(() => {
      sink?.discard()
      sink = undefined
    })

    if (declared !== undefined) {
      // Helper files are trusted as Docker trusted them; the bytes must still hash to what they declare.
      const assembled = yield* Effect.mapError(
        assemble(paths.migrationTarData),
        (failure) => failed(`its tar cannot be rebuilt from ${paths.migrationTarData}: ${failure.detail}`),
      ).pipe(Effect.tapError(() => discard))
      const diffId = diffIdFromHex(assembled.sha256)
      if (diffId !== declared && onDeclaredMismatch !== undefined) onDeclaredMismatch(declared, diffId)
      else if (diffId !== declared) {
        yield* discard
        return yield* failed(`its tar hashes to ${diffId}, not to ${declared} as ${paths.diffId} says`)
      }
      return { diffId, tarBytes: assembled.tarBytes, path: "helper-files" } satisfies StreamedLayerTar
    }

    const viaTarSplit = yield* Effect.result(assemble(paths.tarData))
    if (viaTarSplit._tag === "Success") {
      return { diffId: diffIdFromHex(viaTarSplit.success.sha256), tarBytes: viaTarSplit.success.tarBytes, path: "tarsplit" } satisfies StreamedLayerTar
    }
    yield* discard
    yield* Effect.logWarning(`layer ${id}: tar-split failed (${viaTarSplit.failure.detail}); regenerating its tar`)
    return yield* Effect.scoped(Effect.gen(function* () {
      const view = yield* Effect.mapError(driver.view(id), (error) => failed(error.message))
      const parentRoot = yield* Effect.mapError(regenerationParentRoot(driver, parent), failed)
      const opened = yield* Effect.try({ try: openSink, catch: (error) => failed(errorMessage(error)) })
      sink = opened
      const regenerated = yield* Effect.try({
        try: () => {
          const result = regenerateLayer(
            { root: view.root, parentRoot, layerFiles: driver.layerFiles, tarDataOut: undefined },
            crc,
            () => {},
            opened.write,
          )
          opened.close()
          return result
        },
        catch: (error) => failed(`regenerating its tar failed: ${errorMessage(error)}`),
      }).pipe(Effect.tapError(() => discard))
      return { diffId: diffIdFromHex(regenerated.sha256), tarBytes: regenerated.tarBytes, path: "fallback" } satisfies StreamedLayerTar
    }))
  })
