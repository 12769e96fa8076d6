/**
 * `export`: legacy images out of the graph, no daemon and no `migrate` first,
 * as a docker-archive (what `docker load` reads on Docker 1.10+ through
 * `manifest.json` and on Docker <= 1.9 through `repositories` and the v1
 * directories) or an OCI image layout (a directory, or one tar).
 *
 * Read-only on the Docker root: layer tars are built in a staging directory
 * beside the output, each image's layers first, so an image that fails (a
 * layer whose bytes do not hash to the diffID its helper files declare, a bad
 * `json`, a missing parent) leaves nothing in the output and the others are
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
import { createGzip } from "node:zlib"
import { Effect, Schema } from "effect"
import { goQuote } from "../GoJson.ts"
import type { DiffID, GraphId } from "../Ids.ts"
import { type History, historyFromConfig, makeImageConfig } from "../ImageConfig.ts"
import { graphPaths, listGraph, readParents } from "../LegacyGraph.ts"
import { MAX_CHAIN_DEPTH } from "../Migrate.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { readSmallFile, readSmallFileSync, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import type { StorageDriver } from "../StorageDriver.ts"
import { ArchiveTar } from "./ArchiveTar.ts"
import { type LegacyReference, readLegacyReferences, selectImages, type Unresolved } from "./ImageSelection.ts"
import { type LayerTar, writeLayerTar } from "./LayerTar.ts"

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
  /** Replace an existing output (only once the new one is complete). */
  readonly force?: boolean | undefined
  /** Progress: the layers to write, then bytes as they are written and each layer done. */
  readonly onPlanned?: ((layers: number) => void) | undefined
  readonly onBytes?: ((bytes: number) => void) | undefined
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

const MEDIA = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const

const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex")

/** An image whose config and layers are ready to write. */
interface ReadyImage {
  readonly v1Id: GraphId
  readonly references: ReadonlyArray<LegacyReference>
  readonly chain: ReadonlyArray<GraphId>
  readonly config: Uint8Array
  readonly imageId: string
}

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
      try: () => fs.mkdirSync(path.join(staging, "layers"), { recursive: true, mode: 0o700 }),
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

    return yield* Effect.gen(function* () {
      const layers = new Map<GraphId, LayerTar>()
      const layerFailures = new Map<GraphId, string>()
      const layerOf = (id: GraphId) =>
        Effect.gen(function* () {
          const known = layers.get(id)
          if (known !== undefined) return known
          const failure = layerFailures.get(id)
          if (failure !== undefined) return yield* Effect.fail(failure)
          const made = yield* Effect.result(
            writeLayerTar(root, id, parents.get(id) ?? "", path.join(staging, "layers", `${id}.tar`), path.join(staging, "layers"), options.onBytes),
          )
          options.onLayerDone?.()
          if (made._tag === "Failure") {
            layerFailures.set(id, made.failure.message)
            return yield* Effect.fail(made.failure.message)
          }
          layers.set(id, made.success)
          yield* Effect.logInfo(`layer ${id}: ${made.success.diffId} (${made.success.path})`)
          return made.success
        })

      /** The chain base first, its layers' tars made, and the top image's config as `migrate` writes it. */
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
          const diffIds: Array<DiffID> = []
          const history: Array<History> = []
          let json: Uint8Array = new Uint8Array(0)
          for (const id of chain) {
            const layer = yield* layerOf(id)
            diffIds.push(layer.diffId)
            const file = graphPaths(root, id).json
            json = yield* Effect.tryPromise({
              try: () => readSmallFile(file, SMALL_FILE_LIMIT.config),
              catch: (error) => `${file}: ${errorMessage(error)}`,
            })
            history.push(yield* Effect.try({ try: () => historyFromConfig(json), catch: (error) => `${file}: ${errorMessage(error)}` }))
          }
          const config = yield* Effect.try({ try: () => makeImageConfig(json, diffIds, history), catch: (error) => errorMessage(error) })
          return { v1Id, references: imageReferences, chain, config, imageId: `sha256:${sha256Hex(config)}` } satisfies ReadyImage
        })

      const ready: Array<ReadyImage> = []
      const images: Array<ExportedImage> = []
      for (const selected of selection.images) {
        const keys = selected.references.map((r) => r.key)
        const result = yield* Effect.result(prepare(selected.v1Id, selected.references))
        if (result._tag === "Failure") {
          yield* Effect.logError(`image ${selected.v1Id}${keys.length > 0 ? ` (${keys.join(", ")})` : ""} not exported: ${result.failure}`)
          images.push({ v1Id: selected.v1Id, references: keys, status: "failed", error: result.failure })
          continue
        }
        ready.push(result.success)
        images.push({ v1Id: selected.v1Id, references: keys, status: "exported", imageId: result.success.imageId })
      }

      yield* Effect.tryPromise({
        try: async () => {
          if (options.format === "docker-archive") {
            const archive = path.join(staging, "archive.tar")
            writeDockerArchive(archive, root, ready, layers)
            await publishFile(archive, output)
          } else {
            const layout = path.join(staging, "oci")
            await writeOciLayout(layout, ready, layers, options.gzip)
            if (options.format === "oci") replaceWith(layout, output)
            else {
              const archive = path.join(staging, "archive.tar")
              tarDirectory(layout, archive)
              await publishFile(archive, output)
            }
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
    }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(staging, { recursive: true, force: true }))))
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

/** `manifest.json`, `repositories`, `<config hex>.json` and `<v1 id>/{VERSION,json,layer.tar}` per layer, each once. */
const writeDockerArchive = (file: string, root: string, images: ReadonlyArray<ReadyImage>, layers: ReadonlyMap<GraphId, LayerTar>) => {
  const fd = fs.openSync(file, "wx", 0o644)
  try {
    const tar = new ArchiveTar(fd)
    const written = new Set<string>()
    // Byte-identical v1 images are one image (one config): one entry, with all their tags, as docker save writes it.
    const manifest = new Map<string, { tags: Array<string>; layers: ReadonlyArray<GraphId> }>()
    const repositories = new Map<string, Map<string, string>>()
    for (const image of images) {
      for (const id of image.chain) {
        if (written.has(id)) continue
        written.add(id)
        const layer = layers.get(id)!
        tar.directory(id)
        tar.file(`${id}/VERSION`, "1.0")
        tar.file(`${id}/json`, readSmallFileSync(graphPaths(root, id).json, SMALL_FILE_LIMIT.config))
        tar.fileFrom(`${id}/layer.tar`, layer.file, layer.tarBytes)
      }
      const configName = `${image.imageId.slice("sha256:".length)}.json`
      if (!written.has(configName)) {
        written.add(configName)
        tar.file(configName, image.config)
      }
      const entry = manifest.get(configName) ?? { tags: [], layers: image.chain }
      manifest.set(configName, entry)
      for (const reference of image.references) {
        if (reference.kind === "tag" && !entry.tags.includes(reference.key)) entry.tags.push(reference.key)
      }
      for (const reference of image.references) {
        if (reference.kind !== "tag") continue
        const tags = repositories.get(reference.repository) ?? new Map<string, string>()
        repositories.set(reference.repository, tags)
        tags.set(reference.key.slice(reference.repository.length + 1), image.v1Id)
      }
    }
    tar.file(
      "manifest.json",
      `[${
        [...manifest].map(([config, { tags, layers }]) =>
          `{"Config":${goQuote(config)},"RepoTags":${tags.length === 0 ? "null" : `[${tags.map((t) => goQuote(t)).join(",")}]`},` +
          `"Layers":[${layers.map((id) => goQuote(`${id}/layer.tar`)).join(",")}]}`
        ).join(",")
      }]`,
    )
    if (repositories.size > 0) {
      const text = `{${[...repositories].map(([name, tags]) =>
        `${goQuote(name)}:{${[...tags].map(([tag, id]) => `${goQuote(tag)}:${goQuote(id)}`).join(",")}}`
      ).join(",")}}\n`
      tar.file("repositories", text)
    }
    tar.close()
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** A blob file of the layout, named by its digest (written once). */
const putBlob = (layout: string, bytes: Uint8Array | string) => {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes
  const hex = sha256Hex(data)
  const file = path.join(layout, "blobs", "sha256", hex)
  if (!fs.existsSync(file)) fs.writeFileSync(file, data, { mode: 0o644 })
  return { digest: `sha256:${hex}`, size: data.length }
}

/** An OCI image layout 1.1: `oci-layout`, `index.json` (a `ref.name` per tag), `blobs/sha256/`. */
const writeOciLayout = async (
  layout: string,
  images: ReadonlyArray<ReadyImage>,
  layers: ReadonlyMap<GraphId, LayerTar>,
  gzip: boolean,
) => {
  fs.mkdirSync(path.join(layout, "blobs", "sha256"), { recursive: true })
  fs.writeFileSync(path.join(layout, "oci-layout"), `{"imageLayoutVersion":"1.0.0"}`)
  const layerBlobs = new Map<GraphId, { digest: string; size: number }>()
  const layerBlob = async (id: GraphId) => {
    const known = layerBlobs.get(id)
    if (known !== undefined) return known
    const layer = layers.get(id)!
    let blob: { digest: string; size: number }
    if (!gzip) {
      // The uncompressed tar's digest is its diffID.
      const hex = layer.diffId.slice("sha256:".length)
      fs.renameSync(layer.file, path.join(layout, "blobs", "sha256", hex))
      blob = { digest: layer.diffId, size: layer.tarBytes }
    } else {
      const temporary = path.join(layout, "blobs", `.tmp-${id}`)
      const hash = createHash("sha256")
      let size = 0
      const gzipped = createGzip()
      gzipped.on("data", (chunk: Uint8Array) => {
        hash.update(chunk)
        size += chunk.length
      })
      await pipeline(fs.createReadStream(layer.file), gzipped, fs.createWriteStream(temporary))
      const hex = hash.digest("hex")
      fs.renameSync(temporary, path.join(layout, "blobs", "sha256", hex))
      fs.rmSync(layer.file)
      blob = { digest: `sha256:${hex}`, size }
    }
    layerBlobs.set(id, blob)
    return blob
  }
  const descriptors: Array<string> = []
  for (const image of images) {
    const config = putBlob(layout, image.config)
    const layerDescriptors: Array<string> = []
    for (const id of image.chain) {
      const blob = await layerBlob(id)
      layerDescriptors.push(`{"mediaType":"${gzip ? MEDIA.layerGzip : MEDIA.layer}","digest":"${blob.digest}","size":${blob.size}}`)
    }
    const manifest = putBlob(
      layout,
      `{"schemaVersion":2,"mediaType":"${MEDIA.manifest}","config":{"mediaType":"${MEDIA.config}","digest":"${config.digest}","size":${config.size}},` +
        `"layers":[${layerDescriptors.join(",")}]}`,
    )
    const descriptor = (annotations: string) =>
      `{"mediaType":"${MEDIA.manifest}","digest":"${manifest.digest}","size":${manifest.size}${annotations}}`
    const tags = image.references.filter((r) => r.kind === "tag")
    if (tags.length === 0) descriptors.push(descriptor(""))
    for (const tag of tags) {
      const full = fullyQualified(tag.repository) + tag.key.slice(tag.repository.length)
      descriptors.push(descriptor(`,"annotations":{"io.containerd.image.name":${goQuote(full)},"org.opencontainers.image.ref.name":${goQuote(tag.key)}}`))
    }
  }
  fs.writeFileSync(path.join(layout, "index.json"), `{"schemaVersion":2,"mediaType":"${MEDIA.index}","manifests":[${descriptors.join(",")}]}`)
}

/** `debian` → `docker.io/library/debian`, `user/x` → `docker.io/user/x`; names with a registry stay. */
const fullyQualified = (repository: string): string => {
  const first = repository.split("/")[0]!
  if (repository.includes("/") && (/[.:]/.test(first) || first === "localhost")) return repository
  return `docker.io/${repository.includes("/") ? "" : "library/"}${repository}`
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

