/**
 * `migrate`: everything a Docker 1.10 daemon did at its first start on a
 * legacy root (`migrate/v1.Migrate`), ahead of time: checksums, image configs
 * and layer metadata, distribution metadata, containers, tags, markers.
 *
 * Docker's order and failure rules are kept (an image fails with its parent,
 * a duplicate collapses to one ID, a bad tag is skipped with a warning), with
 * two deliberate differences: a parent cycle fails that chain with an error
 * naming it (Docker recursed until it crashed), and every file is written
 * crash-safely so that a killed run, run again, ends with the same files (a
 * container's mount is recorded before its `config.v2.json`, the marker that
 * it is done).
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Buffer } from "node:buffer"
import { Effect, Schema } from "effect"
import { sortedByUtf8 } from "../Bytes.ts"
import { checksums, type ChecksumsOptions, type ChecksumsReport, type HelperTexts } from "../checksums/Checksums.ts"
import { goQuote } from "../go/GoJson.ts"
import { compactJson, objectMembers, parseJsonTree } from "../go/GoJsonBytes.ts"
import { parseGoTime } from "../go/GoTime.ts"
import { type ChainID, type DiffID, type GraphId, type ImageID, parseDiffId, parseGraphId } from "../Ids.ts"
import { type History, historyFromTree, makeImageConfig } from "../store/ImageConfig.ts"
import { addV2Metadata, openImageStore, putImageConfig, readImageConfig, setImageParent, stageImageCollections } from "../store/ImageStore.ts"
import { chainIdOf, driverIdsInUse, layerExists, readCacheId, readMount, registerLayer, saveMount, stageLayerCollection } from "../store/LayerStore.ts"
import type { TargetDriver, TargetLayer, TargetMount } from "../driver/TargetDriver.ts"
import { errorText, GraphError, graphPaths, listGraph, readLegacyRepositories, readParentSync } from "../legacy/LegacyGraph.ts"
import { decodeRepositories, encodeRepositories, legacyReference, parseDigest, type Repositories } from "../legacy/References.ts"
import { errorCode, errorMessage, isWriteError } from "../platform/ErrorCode.ts"
import { readSmallFile, readSmallFileIfPresentSync, readSmallFileSync, readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { StagedWrites } from "../store/StagedWrites.ts"
import { StorageDriver } from "../driver/StorageDriver.ts"
import { copyFileAtomic, exists, TEMPORARY_PREFIX, writeFileAtomic, writeFileIfChanged } from "../store/StoreFiles.ts"
import { record, recordIfNew } from "../rollback/Journal.ts"
import { createHash } from "node:crypto"

/** Marker and legacy file names at the Docker root. */
export const MIGRATION_IMAGES = ".migration-v1-images.json"
export const MIGRATION_TAGS = ".migration-v1-tags"
export const CONTAINERS_DIR = "containers"
export const CONFIG_LEGACY = "config.json"
export const CONFIG_V2 = "config.v2.json"
export const REPOSITORIES_JSON = "repositories.json"

/** What stops the migration as a whole, as Docker's `Migrate` returned an error. */
export class MigrateError extends Schema.TaggedError<MigrateError>()("MigrateError", {
  step: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot migrate (${this.step}): ${this.detail}`
  }
}

export type ImageReport =
  | { readonly id: string; readonly status: "migrated"; readonly imageId: string; readonly chainId: string }
  | { readonly id: string; readonly status: "already"; readonly imageId: string }
  | { readonly id: string; readonly status: "failed"; readonly error: string }

export type ContainerReport =
  | { readonly id: string; readonly status: "migrated"; readonly imageId: string; readonly mount: boolean; readonly warning?: string }
  | { readonly id: string; readonly status: "preexisting" | "skipped"; readonly reason: string }

export interface TagReport {
  readonly name: string
  readonly tag: string
  readonly status: "added" | "skipped"
  readonly reference?: string
  readonly reason?: string
}

export interface MigrateReport {
  readonly checksums: ChecksumsReport
  readonly images: ReadonlyArray<ImageReport>
  readonly containers: ReadonlyArray<ContainerReport>
  readonly tags: ReadonlyArray<TagReport>
  /** Set when Docker's migration would have stopped (the steps after it did not run). */
  readonly fatal: string | undefined
}

export interface MigrateOptions extends Omit<ChecksumsOptions, "skip"> {
  readonly driverName: string
  /** Write the store for this driver instead of the graph's own (`--target-driver`). */
  readonly target?: TargetDriver | undefined
}

/** The markers of a migration into `target` (a store of another driver has its own, so both can be made). */
export const markerNames = (target: string | undefined) =>
  target === undefined
    ? { images: MIGRATION_IMAGES, tags: MIGRATION_TAGS }
    : { images: `.migration-v1-images.${target}.json`, tags: `${MIGRATION_TAGS}.${target}` }

/** An image already in the store: what its children build on. */
interface Built {
  readonly imageId: ImageID
  readonly diffIds: ReadonlyArray<DiffID>
  readonly history: ReadonlyArray<History>
}

/** An image could not be migrated; `writeError` when the cause was the store's file system (ENOSPC, EIO...), not the image. */
class ImageFailure extends Error {
  constructor(message: string, readonly writeError = false) {
    super(message)
  }
}

const failedOnWrite = (error: unknown): boolean => (error instanceof ImageFailure ? error.writeError : isWriteError(error))

/**
 * Deepest image chain migrated. Docker's own limit was 127 layers; every
 * config holds its whole chain's history, so a chain of depth n writes n^2/2
 * history entries (10,000 deep would be gigabytes of configs).
 */
export const MAX_CHAIN_DEPTH = 1024

/** A small metadata file as text: bounded, and never a FIFO or device (see `RegularFile.ts`). */
const readText = (file: string, limit: number = SMALL_FILE_LIMIT.value) => readSmallText(file, limit)

const decoder = new TextDecoder()

/** A graph file's bytes; an `ImageFailure` naming it when it cannot be read. */
const readOrFail = (file: string, limit: number): Uint8Array => {
  try {
    return readSmallFileSync(file, limit)
  } catch (error) {
    throw new ImageFailure(`${file}: ${errorText(error)}`)
  }
}

/** `readOrFail` of a one-value file, as text. */
const readTextOrFail = (file: string): string => decoder.decode(readOrFail(file, SMALL_FILE_LIMIT.value))

/** The rootfs and history of a stored config (an image migrated by an earlier run). */
const builtFromStore = async (storeRoot: string, imageId: ImageID): Promise<Built> => {
  const bytes = await readImageConfig(storeRoot, imageId)
  if (bytes === undefined) throw new ImageFailure(`image ${imageId} is in ${MIGRATION_IMAGES} but not in the image store`)
  const config = JSON.parse(new TextDecoder().decode(bytes)) as {
    rootfs?: { diff_ids?: Array<string> }
    history?: Array<{ created: string; author?: string; created_by?: string; comment?: string; empty_layer?: boolean }>
  }
  return {
    imageId,
    diffIds: (config.rootfs?.diff_ids ?? []) as Array<DiffID>,
    history: (config.history ?? []).map((h) => ({
      created: parseGoTime(h.created),
      author: h.author ?? "",
      createdBy: h.created_by ?? "",
      comment: h.comment ?? "",
      emptyLayer: h.empty_layer ?? false,
    })),
  }
}

const chainOf = (diffIds: ReadonlyArray<DiffID>): ChainID | undefined =>
  diffIds.reduce<ChainID | undefined>((parent, diffId) => chainIdOf(parent, diffId), undefined)

/** What containers need of a target driver. */
interface ContainerTarget {
  readonly name: string
  /** The Docker root the containers' directories go into (the graph's own, or `--target-root`). */
  readonly root: string
  readonly makeMount: ((mount: TargetMount) => Promise<{ readonly mountId: string; readonly initId: string | undefined }>) | undefined
}

/** Runs the whole migration of the Docker root `options.root`. */
export const migrate = (options: MigrateOptions): Effect.Effect<MigrateReport, MigrateError, StorageDriver> =>
  Effect.gen(function* () {
    const root = options.root
    const target = options.target
    const storeDriver = target?.name ?? options.driverName
    const storeRoot = path.join(target?.root ?? root, "image", storeDriver)
    const markers = markerNames(target?.name)
    const fail = (step: string) => (error: unknown) => new MigrateError({ step, detail: errorText(error) })
    const run = <A>(step: string, action: () => Promise<A>) => Effect.tryPromise({ try: action, catch: fail(step) })
    const empty: MigrateReport = { checksums: { layers: [], helperTexts: new Map(), ignored: [] }, images: [], containers: [], tags: [], fatal: undefined }

    if (!(yield* run("graph", () => exists(path.join(root, "graph"))))) return empty
    yield* run("image store", async () => {
      recordIfNew(root, path.relative(root, storeRoot), "directory")
      await openImageStore(storeRoot)
      const repositories = path.join(storeRoot, REPOSITORIES_JSON)
      if (!(await exists(repositories))) await writeFileAtomic(repositories, encodeRepositories(new Map()), 0o600)
    })

    yield* run("temporary files", () => sweepTemporaries(root, storeRoot, target?.root))
    if (target !== undefined) yield* run(`${target.name} temporary files`, async () => target.prepare(await driverIdsInUse(storeRoot)))
    const mappings = yield* run(markers.images, () => readMappings(root, markers.images))
    const checksumReport = yield* Effect.mapError(
      checksums({ ...options, skip: new Set(mappings.keys()), aheadSlot: target?.aheadSlot }),
      (error) => new MigrateError({ step: "checksums", detail: error.message }),
    )

    const driver = yield* StorageDriver
    // With this fiber's services: the driver, and the logger (the default one writes to stdout, where --json goes).
    const services = yield* Effect.context<StorageDriver>()
    const runWithDriver = <A, E>(effect: Effect.Effect<A, E, StorageDriver>) => Effect.runPromiseWith(services)(effect)
    const makeData = target === undefined ? undefined : (layer: TargetLayer) => runWithDriver(target.makeLayer(layer))
    if (target?.makeAhead !== undefined) {
      // The layers of the images still to do, made in parallel while the images are written one by one.
      yield* target.makeAhead(checksumReport.layers.flatMap((layer) =>
        layer.status === "done" && !mappings.has(layer.id) ? [{ graphId: layer.id, diffId: layer.diffId as DiffID }] : []
      ))
    }
    const migrated = yield* Effect.exit(
      run("images", () => migrateImages(root, storeRoot, mappings, makeData, checksumReport.helperTexts)),
    )
    if (target?.dropAhead !== undefined) yield* target.dropAhead()
    const { reports: images, writeFailures: imageWriteFailures } = yield* migrated
    // A layer whose helper files could not be written fails its images too, and a re-run will do them.
    const writeFailures = imageWriteFailures +
      checksumReport.layers.filter((layer) => layer.status === "failed" && layer.writeError === true).length
    for (const image of images) if (image.status === "failed") yield* Effect.logError(`migration failed for ${image.id}, err: ${image.error}`)

    const tail = yield* Effect.promise(() =>
      migrateTail(root, storeRoot, options.driverName, markers, mappings, writeFailures, (id) =>
        Effect.runPromise(Effect.orElseSucceed(driver.exists(id), () => false)), target === undefined ? undefined : {
        name: target.name,
        root: target.root,
        makeMount: target.makeMount === undefined ? undefined : (mount: TargetMount) => runWithDriver(target.makeMount!(mount)),
      })
    )
    for (const c of tail.containers) {
      if (c.status === "skipped") yield* Effect.logWarning(`container ${c.id}: ${c.reason}`)
      if (c.status === "migrated" && c.warning !== undefined) yield* Effect.logWarning(`container ${c.id}: ${c.warning}`)
    }
    for (const tag of tail.tags) if (tag.status === "skipped") yield* Effect.logWarning(`migrate tags: ${tag.name}:${tag.tag}: ${tag.reason}`)
    if (tail.fatal !== undefined) yield* Effect.logError(`Cannot migrate: ${tail.fatal}`)
    return { checksums: checksumReport, images, ...tail }
  })

/**
 * The steps after the images: the images marker, containers, tags. The first
 * that fails stops the run, as Docker's `Migrate` returned there; the report
 * keeps what was done before it (so `--json` can say so).
 */
const migrateTail = async (
  root: string,
  storeRoot: string,
  driverName: string,
  markers: ReturnType<typeof markerNames>,
  mappings: Map<string, ImageID>,
  writeFailures: number,
  driverHas: (id: GraphId) => Promise<boolean>,
  target: ContainerTarget | undefined,
): Promise<{ containers: Array<ContainerReport>; tags: Array<TagReport>; fatal: string | undefined }> => {
  let containers: Array<ContainerReport> = []
  let step = markers.images
  try {
    recordIfNew(root, markers.images, "file")
    await writeFileIfChanged(path.join(root, markers.images), encodeMappings(mappings), 0o600)
    step = "containers"
    const migrated = await migrateContainers(root, storeRoot, mappings, driverHas, target)
    containers = migrated.reports
    if (migrated.fatal !== undefined) return { containers, tags: [], fatal: migrated.fatal }
    if (writeFailures > 0) {
      // Docker went on and marked the tags done, so after space was freed its re-run never added the tags of those images.
      return {
        containers,
        tags: [],
        fatal: `tags: not migrated, as ${writeFailures} image(s) failed on a write error; ` +
          `free the space (or mend the file system) and run migrate again`,
      }
    }
    step = "tags"
    return { containers, tags: await migrateTags(root, storeRoot, driverName, markers.tags, mappings), fatal: undefined }
  } catch (error) {
    return { containers, tags: [], fatal: `${step}: ${errorText(error)}` }
  }
}

/** What a killed run left half-written: temporary files of atomic writes and unfinished layer directories. */
const sweepTemporaries = async (root: string, storeRoot: string, targetRoot: string | undefined): Promise<void> => {
  const removeIn = async (dir: string, matches: (name: string) => boolean) => {
    for (const name of await fs.readdir(dir).catch(() => [] as Array<string>)) {
      if (matches(name)) await fs.rm(path.join(dir, name), { recursive: true, force: true })
    }
  }
  const isTemporary = (name: string) => name.startsWith(TEMPORARY_PREFIX)
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name)
      if (isTemporary(entry.name)) await fs.rm(full, { recursive: true, force: true })
      else if (entry.isDirectory()) await walk(full)
    }
  }
  await walk(storeRoot)
  await removeIn(path.join(storeRoot, "layerdb", "tmp"), () => true)
  await removeIn(root, isTemporary)
  for (const dockerRoot of new Set([root, targetRoot ?? root])) {
    for (const id of await fs.readdir(path.join(dockerRoot, CONTAINERS_DIR)).catch(() => [] as Array<string>)) {
      await removeIn(path.join(dockerRoot, CONTAINERS_DIR, id), isTemporary)
    }
  }
}

/** `.migration-v1-images.json` of an earlier run (v1 ID -> image ID). */
export const readMappings = async (root: string, marker: string = MIGRATION_IMAGES): Promise<Map<string, ImageID>> => {
  let text: string
  try {
    text = await readText(path.join(root, marker), SMALL_FILE_LIMIT.repositories)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return new Map()
    throw error
  }
  const parsed: unknown = JSON.parse(text)
  if (parsed === null) return new Map()
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${MIGRATION_IMAGES} is not a JSON object`)
  const out = new Map<string, ImageID>()
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "string") throw new Error(`${MIGRATION_IMAGES}: ${key} is not a string`)
    out.set(key, value as ImageID)
  }
  return out
}

/** Go's `json.Encoder` of a `map[string]image.ID`: keys sorted, one line. */
const encodeMappings = (mappings: ReadonlyMap<string, ImageID>): string =>
  `{${sortedByUtf8(mappings.keys())
    .map((key) => `${goQuote(key)}:${goQuote(mappings.get(key)!)}`).join(",")}}\n`

/** `migrateImages`: every image not yet mapped, parents first, failures recorded and the run going on. */
const migrateImages = async (
  root: string,
  storeRoot: string,
  mappings: Map<string, ImageID>,
  makeData: ((layer: TargetLayer) => Promise<string>) | undefined,
  helperTexts: ReadonlyMap<GraphId, HelperTexts>,
): Promise<{ reports: Array<ImageReport>; writeFailures: number }> => {
  const listing = await Effect.runPromise(listGraph(root))
  const built = new Map<string, Built>()
  const failed = new Map<string, ImageFailure>()
  const reports: Array<ImageReport> = []
  // Every image's files join one batch, made durable and put in place before
  // `.migration-v1-images.json` names any of them (a killed run redoes them all).
  const writes = new StagedWrites([storeRoot])
  stageImageCollections(storeRoot, writes)
  stageLayerCollection(storeRoot, writes)
  /** Cache IDs of the target driver's layers staged in this batch (their layerdb directories are not in place yet). */
  const stagedCacheIds = new Map<ChainID, string>()

  const builtOf = async (v1Id: string, chain: ReadonlyArray<string>): Promise<Built> => {
    const known = built.get(v1Id)
    if (known !== undefined) return known
    const mapped = mappings.get(v1Id)
    if (mapped !== undefined) {
      const fromStore = await builtFromStore(storeRoot, mapped)
      built.set(v1Id, fromStore)
      return fromStore
    }
    const earlier = failed.get(v1Id)
    if (earlier !== undefined) throw earlier
    try {
      if (chain.length >= MAX_CHAIN_DEPTH) {
        throw new ImageFailure(`image chain deeper than ${MAX_CHAIN_DEPTH} layers (from ${chain[0]})`)
      }
      const result = await migrateImage(v1Id, chain)
      built.set(v1Id, result)
      mappings.set(v1Id, result.imageId)
      return result
    } catch (error) {
      const failure = new ImageFailure(errorMessage(error), failedOnWrite(error))
      failed.set(v1Id, failure)
      throw failure
    }
  }

  const migrateImage = async (v1Id: string, chain: ReadonlyArray<string>): Promise<Built> => {
    const graphId = parseGraphId(v1Id)
    const paths = graphPaths(root, (graphId ?? v1Id) as GraphId)
    const imageJson = readOrFail(paths.json, SMALL_FILE_LIMIT.config)
    let parentText: string
    try {
      parentText = readParentSync(root, v1Id as GraphId, imageJson)
    } catch (error) {
      throw new ImageFailure(error instanceof GraphError ? error.detail : errorMessage(error))
    }
    let parent: Built | undefined
    if (parentText !== "") {
      if (chain.includes(parentText)) {
        throw new ImageFailure(`parent cycle: ${[...chain, v1Id, parentText].join(" -> ")}`)
      }
      parent = await builtOf(parentText, [...chain, v1Id])
    }
    // The checksums pass has just read or written them (the daemon guard keeps others out meanwhile).
    const texts = graphId === undefined ? undefined : helperTexts.get(graphId)
    const diffIdText = texts?.diffId ?? readTextOrFail(paths.diffId)
    const diffId = parseDiffId(diffIdText)
    if (diffId === undefined) throw new ImageFailure(`${paths.diffId}: invalid digest ${JSON.stringify(diffIdText)}`)
    const sizeText = texts?.size ?? readTextOrFail(paths.size)
    if (!/^[+-]?[0-9]+$/.test(sizeText)) throw new ImageFailure(`${paths.size}: invalid size ${JSON.stringify(sizeText)}`)
    const parentChain = chainOf(parent?.diffIds ?? [])
    if (parentChain !== undefined && !layerExists(storeRoot, parentChain, writes)) {
      throw new ImageFailure(`layer does not exist: ${parentChain}`)
    }
    const thisChain = chainIdOf(parentChain, diffId)
    // A target driver's data is made before the layer is staged, once per chain: the cache ID it names goes in the layer.
    let cacheId: string | undefined
    if (makeData !== undefined && !layerExists(storeRoot, thisChain, writes)) {
      if (graphId === undefined) throw new ImageFailure(`${v1Id} is not a layer ID: its data cannot be made in the target driver`)
      const parentCacheId = parentChain === undefined ? undefined : (stagedCacheIds.get(parentChain) ?? await readCacheId(storeRoot, parentChain))
      cacheId = await makeData({ graphId, graphParent: parentText, parentCacheId, diffId }).catch((error: unknown) => {
        throw new ImageFailure(errorMessage(error), isWriteError(error))
      })
      stagedCacheIds.set(thisChain, cacheId)
    }
    const chainId = registerLayer(storeRoot, {
      graphId: v1Id,
      parent: parentChain,
      diffId,
      size: Number(sizeText),
      tarDataPath: paths.migrationTarData,
      cacheId,
    }, writes)
    const diffIds = [...(parent?.diffIds ?? []), diffId]
    let history: Array<History>
    let config: Uint8Array
    try {
      const tree = parseJsonTree(imageJson)
      history = [...(parent?.history ?? []), historyFromTree(tree)]
      config = makeImageConfig(imageJson, diffIds, history, tree)
    } catch (error) {
      throw new ImageFailure(errorMessage(error))
    }
    const imageId = putImageConfig(storeRoot, config, writes)
    if (parent !== undefined) setImageParent(storeRoot, imageId, parent.imageId, writes)
    let checksum: string | undefined
    try {
      const bytes = readSmallFileIfPresentSync(path.join(paths.dir, "checksum"), SMALL_FILE_LIMIT.value)
      checksum = bytes === undefined ? undefined : decoder.decode(bytes)
    } catch {
      checksum = undefined
    }
    const blobDigest = checksum === undefined ? undefined : parseDigest(checksum)
    if (blobDigest !== undefined) addV2Metadata(storeRoot, diffId, blobDigest, writes)
    reports.push({ id: v1Id, status: "migrated", imageId, chainId })
    return { imageId, diffIds, history }
  }

  for (const id of listing.ids) {
    if (mappings.has(id) && !built.has(id)) {
      reports.push({ id, status: "already", imageId: mappings.get(id)! })
      continue
    }
    if (built.has(id) || failed.has(id)) continue
    try {
      await builtOf(id, [])
    } catch {
      // recorded below
    }
  }
  await writes.commitInParallel()
  for (const [id, failure] of failed) reports.push({ id, status: "failed", error: failure.message })
  return {
    reports: reports.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    writeFailures: [...failed.values()].filter((failure) => failure.writeError).length,
  }
}

/** `migrateContainers`: `config.v2.json` with the new image ID, and the read-write layer's mount. */
const migrateContainers = async (
  root: string,
  storeRoot: string,
  mappings: ReadonlyMap<string, ImageID>,
  driverHas: (id: GraphId) => Promise<boolean>,
  target: ContainerTarget | undefined,
): Promise<{ reports: Array<ContainerReport>; fatal: string | undefined }> => {
  const dir = path.join(root, CONTAINERS_DIR)
  // The 1.10 daemon created containers/ before migrating, so a root without it has no containers.
  const listed = await fs.readdir(dir).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return [] as Array<string>
    throw error
  })
  const names = listed.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const reports: Array<ContainerReport> = []
  // With --target-root elsewhere, each container's directory is made there; the graph's stays as it was.
  const outDir = path.join(target?.root ?? root, CONTAINERS_DIR)
  for (const id of names) {
    const v2 = path.join(outDir, id, CONFIG_V2)
    if (await fs.stat(v2).then(() => true, () => false)) {
      reports.push({ id, status: "preexisting", reason: `${CONFIG_V2} already there: left alone` })
      continue
    }
    let legacy: Uint8Array
    try {
      legacy = await readSmallFile(path.join(dir, id, CONFIG_LEGACY), SMALL_FILE_LIMIT.config)
    } catch (error) {
      reports.push({ id, status: "skipped", reason: `migrate container error: ${path.join(dir, id, CONFIG_LEGACY)}: ${errorText(error)}` })
      continue
    }
    let members: Map<string, Uint8Array>
    try {
      members = objectMembers(legacy)
    } catch (error) {
      reports.push({ id, status: "skipped", reason: `migrate container error: ${errorText(error)}` })
      continue
    }
    const imageRaw = members.get("Image")
    if (imageRaw === undefined) return { reports, fatal: `invalid container configuration for ${id}` }
    const image = parseJsonTree(imageRaw)
    if (image.kind !== "string") {
      reports.push({ id, status: "skipped", reason: `migrate container error: Image is not a string` })
      continue
    }
    const imageId = mappings.get(image.value)
    if (imageId === undefined) {
      reports.push({ id, status: "skipped", reason: `image not migrated: ${image.value}` })
      continue
    }
    members.set("Image", new TextEncoder().encode(goQuote(imageId)))
    if (target !== undefined) members.set("Driver", new TextEncoder().encode(goQuote(target.name)))
    const config = encodeRawObject(members)
    let mount = false
    let warning: string | undefined
    const built = await builtFromStore(storeRoot, imageId)
    const parentChain = chainOf(built.diffIds)
    const graphId = parseGraphId(id)
    if (graphId === undefined || !(await driverHas(graphId))) {
      warning = `migrate container error: graph ID does not exist: ${JSON.stringify(id)}`
    } else if (parentChain !== undefined && !layerExists(storeRoot, parentChain)) {
      warning = "migrate container error: layer does not exist"
    } else {
      const existing = await readMount(storeRoot, id)
      const hasInit = await driverHas(`${id}-init` as GraphId)
      if (existing.mountId !== undefined) mount = true
      else if (target === undefined) {
        await saveMount(storeRoot, { name: id, mountId: id, initId: hasInit ? `${id}-init` : undefined, parent: parentChain })
        mount = true
      } else if (target.makeMount === undefined) {
        warning = `migrate container error: its layers are not converted to ${target.name}`
      } else {
        const made = await target.makeMount({
          container: id,
          imageGraphId: image.value,
          imageCacheId: parentChain === undefined ? undefined : await readCacheId(storeRoot, parentChain),
          initGraphId: hasInit ? `${id}-init` as GraphId : undefined,
        }).then((ids) => ids, (error: unknown) => errorMessage(error))
        if (typeof made === "string") warning = `migrate container error: ${made}`
        else {
          await saveMount(storeRoot, { name: id, mountId: made.mountId, initId: made.initId, parent: parentChain })
          mount = true
        }
      }
    }
    if (outDir !== dir) await copyContainerFiles(root, path.join(dir, id), path.join(outDir, id))
    const sha256 = createHash("sha256").update(config).digest("hex")
    record(root, outDir === dir ? { op: "container", id, sha256 } : { op: "container", id, sha256, dir: path.relative(root, outDir) })
    await writeFileAtomic(v2, config, 0o600)
    reports.push({ id, status: "migrated", imageId, mount, ...(warning === undefined ? {} : { warning }) })
  }
  return { reports, fatal: undefined }
}

/** A file of a container's directory that migrate copies into another Docker root: all but the configs and temporaries. */
export const isCopiedContainerFile = (name: string): boolean =>
  name !== CONFIG_LEGACY && name !== CONFIG_V2 && !name.startsWith(TEMPORARY_PREFIX)

/**
 * A container's directory made in another Docker root: its regular files
 * (`hostconfig.json`, the log, `hostname`, `hosts`, `resolv.conf`) copied, but
 * the legacy `config.json` that no newer daemon reads; each creation journaled
 * in the graph's root, so one `rollback` undoes both.
 */
const copyContainerFiles = async (root: string, from: string, to: string): Promise<void> => {
  recordIfNew(root, path.relative(root, path.dirname(to)), "directory")
  await fs.mkdir(path.dirname(to), { recursive: true, mode: 0o710 })
  recordIfNew(root, path.relative(root, to), "directory")
  await fs.mkdir(to, { recursive: true, mode: 0o700 })
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    if (!entry.isFile() || !isCopiedContainerFile(entry.name)) continue
    const destination = path.join(to, entry.name)
    if (await exists(destination)) continue
    const { mode } = await fs.stat(path.join(from, entry.name))
    recordIfNew(root, path.relative(root, destination), "file")
    await copyFileAtomic(path.join(from, entry.name), destination, mode & 0o7777)
  }
}

/** `json.Marshal` of a `map[string]*json.RawMessage`. */
const encodeRawObject = (members: ReadonlyMap<string, Uint8Array>): Uint8Array => {
  const utf8 = new TextEncoder()
  const keys = [...members.keys()].sort((a, b) => Buffer.compare(Buffer.from(utf8.encode(a)), Buffer.from(utf8.encode(b))))
  const parts: Array<Uint8Array> = [utf8.encode("{")]
  keys.forEach((key, i) => parts.push(utf8.encode(`${i > 0 ? "," : ""}${goQuote(key)}:`), compactJson(members.get(key)!)))
  parts.push(utf8.encode("}"))
  return new Uint8Array(Buffer.concat(parts))
}

/** `migrateRefs`: legacy tags into `repositories.json`, once (`.migration-v1-tags` marks it done). */
const migrateTags = async (
  root: string,
  storeRoot: string,
  driverName: string,
  marker: string,
  mappings: ReadonlyMap<string, ImageID>,
): Promise<Array<TagReport>> => {
  if (await exists(path.join(root, marker))) return []
  const legacy = await readLegacyRepositories(root, driverName)
  if (legacy === undefined) return []
  const file = path.join(storeRoot, REPOSITORIES_JSON)
  const repositories: Repositories = decodeRepositories(await readText(file, SMALL_FILE_LIMIT.repositories))
  const reports: Array<TagReport> = []
  for (const { name, tags } of legacy) {
    for (const [tag, v1Id] of tags) {
      const imageId = mappings.get(v1Id)
      if (imageId === undefined) {
        reports.push({ name, tag, status: "skipped", reason: `image ${JSON.stringify(v1Id)} was not migrated` })
        continue
      }
      let reference
      try {
        reference = legacyReference(name, tag)
      } catch (error) {
        reports.push({ name, tag, status: "skipped", reason: errorMessage(error) })
        continue
      }
      const refs = repositories.get(reference.repository) ?? new Map<string, string>()
      repositories.set(reference.repository, refs)
      const old = refs.get(reference.key)
      if (old !== undefined && old !== imageId) {
        const reason = reference.kind === "digest"
          ? `Cannot overwrite digest ${reference.key.slice(reference.key.indexOf("@") + 1)}`
          : `Conflict: Tag ${reference.key} is already set to image ${old}`
        reports.push({ name, tag, status: "skipped", reference: reference.key, reason })
        continue
      }
      refs.set(reference.key, imageId)
      reports.push({ name, tag, status: "added", reference: reference.key })
    }
  }
  await writeFileAtomic(file, encodeRepositories(repositories), 0o600)
  recordIfNew(root, marker, "file")
  await writeFileAtomic(path.join(root, marker), "", 0o644)
  return reports
}
