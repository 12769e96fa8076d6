/**
 * One legacy layer's tar, written to a file outside the Docker root: exactly
 * the bytes whose SHA-256 is its diffID. Where the layer's helper files are
 * there (`.migration-diffid`, trusted as Docker trusted them), the tar is
 * rebuilt from `.migration-tardata` and the driver's files and must hash to
 * that diffID; otherwise it is computed as `checksums` computes it (tar-split,
 * else regenerated), with nothing written into the root.
 *
 * @module
 */
import * as fs from "node:fs"
import { Effect, Schema } from "effect"
import { type Crc64Engine, makeCrc64Engine } from "../Crc64Wasm.ts"
import { type DiffID, diffIdFromHex, type GraphId, parseDiffId } from "../Ids.ts"
import { LayerRoot } from "../LayerPath.ts"
import { graphPaths } from "../LegacyGraph.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { writeAll } from "../platform/WriteAll.ts"
import { regenerateLayer } from "../RegenerateLayer.ts"
import { regenerationParentRoot, StorageDriver } from "../StorageDriver.ts"
import { AssembleFailure, assembleLayer } from "../TarSplitAssembler.ts"

/** A layer's tar could not be produced, or its bytes do not hash to the diffID its helper files declare. */
export class LayerTarError extends Schema.TaggedError<LayerTarError>()("LayerTarError", {
  layer: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot export layer ${this.layer}: ${this.detail}`
  }
}

/** A layer's tar in a file, and what it is. */
export interface LayerTar {
  readonly file: string
  readonly diffId: DiffID
  /** Bytes in the tar. */
  readonly tarBytes: number
  /** How the bytes were made. */
  readonly path: "helper-files" | "tarsplit" | "fallback"
}

let engine: Crc64Engine | undefined

/** Where a layer's tar bytes go; `discard` undoes a partial write (before a retry, or on failure). */
export interface LayerSink {
  readonly write: (bytes: Uint8Array) => void
  readonly close: () => void
  readonly discard: () => void
}

/** A layer's tar streamed to a sink, and what it is. */
export type StreamedLayerTar = Omit<LayerTar, "file">

/** Appends to `file` (created) everything given to the returned sink. */
const fileSink = (file: string, onBytes: (bytes: number) => void): LayerSink => {
  const fd = fs.openSync(file, "wx", 0o600)
  let closed = false
  const close = () => {
    if (!closed) fs.closeSync(fd)
    closed = true
  }
  return {
    write: (bytes: Uint8Array) => {
      writeAll(fd, bytes)
      onBytes(bytes.length)
    },
    close,
    discard: () => {
      close()
      fs.rmSync(file, { force: true })
    },
  }
}

/**
 * Writes the tar of layer `id` (whose parent is `parent`, `""` for none) to
 * `file`, which must not exist. `scratch` is a directory outside the root for
 * the regenerated tar-split, which `export` does not keep.
 */
export const writeLayerTar = (
  root: string,
  id: GraphId,
  parent: string,
  file: string,
  scratch: string,
  onBytes: (bytes: number) => void = () => {},
): Effect.Effect<LayerTar, LayerTarError, StorageDriver> =>
  Effect.map(
    streamLayerTar(root, id, parent, () => fileSink(file, onBytes), scratch),
    (streamed) => ({ file, ...streamed }),
  )

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
  scratch: string,
  /** Keep a tar that does not hash to the diffID the helper files declare (Docker trusted them), calling this. */
  onDeclaredMismatch?: ((declared: DiffID, actual: DiffID) => void) | undefined,
): Effect.Effect<StreamedLayerTar, LayerTarError, StorageDriver> =>
  Effect.gen(function* () {
    const paths = graphPaths(root, id)
    const failed = (detail: string) => new LayerTarError({ layer: id, detail })
    const declaredText = yield* Effect.promise(() => readSmallText(paths.diffId, SMALL_FILE_LIMIT.value).catch(() => undefined))
    const declared = declaredText === undefined ? undefined : parseDiffId(declaredText)
    if (declaredText !== undefined && declared === undefined) {
      return yield* failed(`${paths.diffId}: invalid digest ${JSON.stringify(declaredText.slice(0, 80))}`)
    }
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
            { root: view.root, parentRoot, layerFiles: driver.layerFiles, tarDataOut: `${scratch}/${id}.tar-split.gz` },
            crc,
            () => {},
            opened.write,
          )
          opened.close()
          return result
        },
        catch: (error) => failed(`regenerating its tar failed: ${errorMessage(error)}`),
      }).pipe(Effect.tapError(() => discard))
      fs.rmSync(`${scratch}/${id}.tar-split.gz`, { force: true })
      return { diffId: diffIdFromHex(regenerated.sha256), tarBytes: regenerated.tarBytes, path: "fallback" } satisfies StreamedLayerTar
    }))
  })
