/**
 * `export`: legacy images out of the graph, no daemon and no `migrate` first,
 * as a docker-archive (what `docker load` reads on Docker 1.10+ through
 * `manifest.json` and on Docker <= 1.9 through `repositories` and the v1
 * directories) or an OCI image layout (a directory, or one tar).
 *
 * Read-only on the Docker root. The output is built in a staging directory
 * beside it, image by image: each layer's tar is written by a layer worker
 * straight at its place (an archive member, a blob) while it is hashed, then
 * the image's config; an image that fails (a layer whose bytes do not hash to
 * the diffID its helper files declare, a bad `json`, a missing parent) is
 * taken out again, so nothing of it is in the output, and the others are
 * still exported. The output appears whole, by a rename, at the end.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { pipeline } from "node:stream/promises"
import { Effect, Schema } from "effect"
import type { DiffID, GraphId } from "../Ids.ts"
import { type History, historyFromConfig, makeImageConfig } from "../store/ImageConfig.ts"
import { graphPaths, listGraph, readParents } from "../legacy/LegacyGraph.ts"
import { MAX_CHAIN_DEPTH } from "../migrate/Migrate.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { readSmallFile, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import type { HashPool } from "../hash/HashPool.ts"
import type { StorageDriver } from "../driver/StorageDriver.ts"
import { ArchiveTar } from "./ArchiveTar.ts"
import { type LegacyReference, readLegacyReferences, selectImages, type Unresolved } from "./ImageSelection.ts"
import { DockerArchiveWriter } from "./DockerArchive.ts"
import { type LayerTar, writeLayerTar } from "./LayerTar.ts"
import { OciLayoutWriter } from "./OciLayout.ts"
import type { ImageWriter, ReadyImage } from "./ReadyImage.ts"

export const EXPORT_FORMATS = ["docker-archive", "oci", "oci-archive"] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export interface ExportOptions {
  readonly root: string
  readonly driverName: string
  /** A path, or `-` for stdout (docker-archive and oci-archive). */
  readonly output: string
  readonly format: ExportFormat
  /** OCI layers as gzip tars. */
  readonly gzip: boolean
  /** With no image named: also untagged images that are no other image's parent. */
  readonly all: boolean
  readonly images: ReadonlyArray<string>
  /** The layer workers that write and hash the layer tars. */
  readonly pool: HashPool
  /** Replace an existing output (only once the new one is complete). */
  readonly force?: boolean | undefined
  /** Progress: the layers to write, then each layer done (the pool reports bytes). */
  readonly onPlanned?: ((layers: number) => void) | undefined
  readonly onLayerDone?: (() => void) | undefined
}

/** The export cannot start (exit 2): a bad output, an unreadable graph. */
export class ExportError extends Schema.TaggedError<ExportError>()("ExportError", {
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot export: ${this.detail}`
  }
}

export type ExportedImage =
  | { readonly v1Id: string; readonly references: ReadonlyArray<string>; readonly status: "exported"; readonly imageId: string }
  | { readonly v1Id: string; readonly references: ReadonlyArray<string>; readonly status: "failed"; readonly error: string }

export interface ExportReport {
  readonly images: ReadonlyArray<ExportedImage>
  readonly unresolved: ReadonlyArray<Unresolved>
  readonly layers: ReadonlyArray<{ readonly id: string; readonly diffId: string; readonly path: LayerTar["path"]; readonly bytes: number }>
}

const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex")

/** Runs `export`; the report lists every image, exported or failed. */
export const exportImages = (options: ExportOptions): Effect.Effect<ExportReport, ExportError, StorageDriver> =>
  Effect.gen(function* () {
    const { root } = options
    const toStdout = options.output === "-"
    if (toStdout && options.format === "oci") return yield* new ExportError({ detail: "--output - needs --format docker-archive or oci-archive" })
    if (options.gzip && options.format === "docker-archive") return yield* new ExportError({ detail: "--gzip is for the OCI formats (docker load reads uncompressed layers)" })
    const output = toStdout ? "-" : path.resolve(options.output)
    if (!toStdout) {
      if (fs.existsSync(output) && options.force !== true) {
        return yield* new ExportError({ detail: `${output} already exists (--force replaces it once the new one is complete)` })
      }
      const parent = yield* Effect.try({
        try: () => fs.realpathSync(path.dirname(output)),
        catch: (error) => new ExportError({ detail: `${path.dirname(output)}: ${errorMessage(error)}` }),
      })
      const relative = path.relative(fs.realpathSync(root), path.join(parent, path.basename(output)))
      if (!relative.startsWith("..") && !path.isAbsolute(relative)) {
        return yield* new ExportError({ detail: `${output} is inside the Docker root ${root}, which export only reads` })
      }
    }

    const listing = yield* Effect.mapError(listGraph(root), (error) => new ExportError({ detail: error.message }))
    const { parents, errors: parentErrors } = yield* readParents(root, listing.ids)
    // Unreadable tags do not stop the export (images named by ID still go out); they are reported and exit 1.
    const tagsUnreadable: Array<Unresolved> = []
    const references = yield* Effect.promise(() =>
      readLegacyReferences(root, options.driverName, (message) => void process.stderr.write(`${message}\n`)).catch((error: unknown) => {
        tagsUnreadable.push({ argument: `repositories-${options.driverName}`, reason: errorMessage(error) })
        return []
      })
    )
    const picked = selectImages(options.images, references, listing.ids, parents, options.all)
    const selection = { images: picked.images, unresolved: [...tagsUnreadable, ...picked.unresolved] }
    for (const missing of selection.unresolved) yield* Effect.logError(`${missing.argument}: ${missing.reason}`)

    const staging = toStdout
      ? path.join(os.tmpdir(), `cas-migrator-export-${process.pid}-${randomBytes(6).toString("hex")}`)
      : `${output}.tmp-${randomBytes(6).toString("hex")}`
    yield* Effect.try({
      try: () => fs.mkdirSync(path.join(staging, "scratch"), { recursive: true, mode: 0o700 }),
      catch: (error) => new ExportError({ detail: `cannot write beside ${output}: ${errorMessage(error)}` }),
    })
    const planned = new Set<GraphId>()
    for (const image of selection.images) {
      for (let id: string = image.v1Id; id !== "" && !planned.has(id as GraphId) && planned.size < 1e6;) {
        planned.add(id as GraphId)
        id = parents.get(id as GraphId) ?? ""
      }
    }
    options.onPlanned?.(planned.size)

    const archive = path.join(staging, "archive.tar")
    const layout = path.join(staging, "oci")
    const writer = yield* Effect.try({
      try: (): ImageWriter & { close?: () => void } =>
        options.format === "docker-archive" ? new DockerArchiveWriter(archive, root) : new OciLayoutWriter(layout, options.gzip),
      catch: (error) => new ExportError({ detail: `cannot write beside ${output}: ${errorMessage(error)}` }),
    })
    const scratch = path.join(staging, "scratch")

    return yield* Effect.gen(function* () {
      const layers = new Map<GraphId, LayerTar>()
      const layerFailures = new Map<GraphId, string>()
      /** The layer's tar in the output (written now unless it is there): its diffID. */
      const layerOf = (id: GraphId) =>
        Effect.gen(function* () {
          const known = layers.get(id)
          if (known !== undefined && writer.has(id)) return known
          const failure = layerFailures.get(id)
          if (failure !== undefined) return yield* Effect.fail(failure)
          const made = yield* Effect.result(Effect.gen(function* () {
            const target = yield* Effect.try({ try: () => writer.beginLayer(id), catch: (error) => errorMessage(error) })
            const layer = yield* Effect.mapError(writeLayerTar(options.pool, root, id, parents.get(id) ?? "", target, scratch), (error) => error.message)
            yield* Effect.tryPromise({ try: () => writer.endLayer(id, layer.diffId, layer.tarBytes), catch: (error) => errorMessage(error) })
            return layer
          }))
          options.onLayerDone?.()
          if (made._tag === "Failure") {
            layerFailures.set(id, made.failure)
            return yield* Effect.fail(made.failure)
          }
          layers.set(id, made.success)
          yield* Effect.logInfo(`layer ${id}: ${made.success.diffId} (${made.success.path})`)
          return made.success
        })

      /** The chain base first, its layers' tars written, and the top image's config as `migrate` writes it. */
      const prepare = (v1Id: GraphId, imageReferences: ReadonlyArray<LegacyReference>) =>
        Effect.gen(function* () {
          const chain: Array<GraphId> = []
          for (let id: string = v1Id; id !== "";) {
            if (chain.includes(id as GraphId)) return yield* Effect.fail(`parent cycle: ${[...chain, id].join(" -> ")}`)
            if (chain.length >= MAX_CHAIN_DEPTH) return yield* Effect.fail(`image chain deeper than ${MAX_CHAIN_DEPTH} layers`)
            if (!listing.ids.includes(id as GraphId)) return yield* Effect.fail(`image ${id} (a parent) is not in graph/`)
            const error = parentErrors.get(id as GraphId)
            if (error !== undefined) return yield* Effect.fail(error)
            chain.push(id as GraphId)
            id = parents.get(id as GraphId) ?? ""
          }
          chain.reverse()
          // Blobs are files of their own: an OCI layout's layers are made in parallel; an archive's go one after another.
          const made = yield* Effect.forEach(chain, (id) => Effect.result(layerOf(id)), { concurrency: writer.parallel ? options.pool.size : 1 })
          const diffIds: Array<DiffID> = []
          const history: Array<History> = []
          let json: Uint8Array = new Uint8Array(0)
          for (const [index, id] of chain.entries()) {
            const layer = made[index]!
            if (layer._tag === "Failure") return yield* Effect.fail(layer.failure)
            diffIds.push(layer.success.diffId)
            const file = graphPaths(root, id).json
            json = yield* Effect.tryPromise({
              try: () => readSmallFile(file, SMALL_FILE_LIMIT.config),
              catch: (error) => `${file}: ${errorMessage(error)}`,
            })
            history.push(yield* Effect.try({ try: () => historyFromConfig(json), catch: (error) => `${file}: ${errorMessage(error)}` }))
          }
          const config = yield* Effect.try({ try: () => makeImageConfig(json, diffIds, history), catch: (error) => errorMessage(error) })
          const ready = { v1Id, references: imageReferences, chain, config, imageId: `sha256:${sha256Hex(config)}` } satisfies ReadyImage
          yield* Effect.try({ try: () => writer.addImage(ready), catch: (error) => errorMessage(error) })
          return ready
        })

      const ready: Array<ReadyImage> = []
      const images: Array<ExportedImage> = []
      for (const selected of selection.images) {
        const keys = selected.references.map((r) => r.key)
        writer.beginImage()
        const result = yield* Effect.result(prepare(selected.v1Id, selected.references))
        if (result._tag === "Failure") {
          // Nothing of a failed image stays in the output; its layers are written again if a later image needs them.
          writer.dropImage()
          yield* Effect.logError(`image ${selected.v1Id}${keys.length > 0 ? ` (${keys.join(", ")})` : ""} not exported: ${result.failure}`)
          images.push({ v1Id: selected.v1Id, references: keys, status: "failed", error: result.failure })
          continue
        }
        ready.push(result.success)
        images.push({ v1Id: selected.v1Id, references: keys, status: "exported", imageId: result.success.imageId })
      }

      yield* Effect.tryPromise({
        try: async () => {
          writer.finish()
          if (options.format === "docker-archive") await publishFile(archive, output)
          else if (options.format === "oci") replaceWith(layout, output)
          else {
            tarDirectory(layout, archive)
            await publishFile(archive, output)
          }
        },
        catch: (error) => new ExportError({ detail: `writing ${output}: ${errorMessage(error)}` }),
      })
      const usedLayers = new Set(ready.flatMap((image) => image.chain))
      return {
        images,
        unresolved: selection.unresolved,
        layers: [...layers].filter(([id]) => usedLayers.has(id)).map(([id, layer]) => ({
          id,
          diffId: layer.diffId,
          path: layer.path,
          bytes: layer.tarBytes,
        })),
      } satisfies ExportReport
    }).pipe(Effect.ensuring(Effect.sync(() => {
      writer.close?.()
      fs.rmSync(staging, { recursive: true, force: true })
    })))
  })

/** Puts the finished `made` at `output`; an existing output (`--force`) goes only after. */
const replaceWith = (made: string, output: string) => {
  if (!fs.existsSync(output)) {
    fs.renameSync(made, output)
    return
  }
  const old = `${output}.old-${randomBytes(6).toString("hex")}`
  fs.renameSync(output, old)
  fs.renameSync(made, output)
  fs.rmSync(old, { recursive: true, force: true })
}

/** Moves the finished file to `output`, or streams it to stdout. */
const publishFile = async (file: string, output: string): Promise<void> => {
  if (output !== "-") {
    replaceWith(file, output)
    return
  }
  await pipeline(fs.createReadStream(file), process.stdout)
}

/** The layout directory as one tar (oci-archive): directories first, names sorted. */
const tarDirectory = (dir: string, file: string) => {
  const fd = fs.openSync(file, "wx", 0o644)
  try {
    const tar = new ArchiveTar(fd)
    const walk = (relative: string) => {
      for (const name of fs.readdirSync(path.join(dir, relative)).sort()) {
        const member = relative === "" ? name : `${relative}/${name}`
        const stat = fs.statSync(path.join(dir, member))
        if (stat.isDirectory()) {
          tar.directory(member)
          walk(member)
        } else tar.fileFrom(member, path.join(dir, member), stat.size)
      }
    }
    walk("")
    tar.close()
  } finally {
    fs.closeSync(fd)
  }
}

