/**
 * `plan`: what `migrate` would do to this root, item by item, without
 * writing anything: each layer's path (`preexisting`, `tarsplit`, `fallback`
 * with the reason when it shows without hashing, or `failed`), each image,
 * container and tag (`migrated`/`added` or why not), totals, the space the
 * new store needs and the free space there, and an estimated duration from
 * this machine's SHA-256 speed. With `deep`, every layer is hashed as
 * `checksums` would (nothing written), so every fallback and every image ID
 * is known.
 *
 * It follows `migrate`'s own rules (Migrate.ts) in the same order, so its
 * predictions are checked against real runs on every golden.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { checksums, type ChecksumsOptions, type LayerReport } from "../checksums/Checksums.ts"
import { findDaemon } from "../DaemonGuard.ts"
import { objectMembers, parseJsonTree } from "../go/GoJsonBytes.ts"
import { type DiffID, EMPTY_LAYER_DIFF_ID, type GraphId } from "../Ids.ts"
import { type History, historyFromTree, makeImageConfig } from "../store/ImageConfig.ts"
import { errorText, graphPaths, listGraph, readLegacyRepositories, readParents } from "../legacy/LegacyGraph.ts"
import { CONFIG_LEGACY, CONFIG_V2, CONTAINERS_DIR, MAX_CHAIN_DEPTH, MIGRATION_TAGS, readMappings } from "../migrate/Migrate.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { readSmallFile, readSmallFileSync, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { legacyReference } from "../legacy/References.ts"
import { StorageDriver } from "../driver/StorageDriver.ts"
import { makeCrc64Engine } from "../crc/Crc64Engine.ts"
import { LayerRoot } from "../tar/LayerPath.ts"
import { assembleLayer } from "../tar/TarSplitAssembler.ts"

export type PlannedLayer =
  | { readonly id: string; readonly path: "preexisting" | "tarsplit"; readonly bytes: number }
  | { readonly id: string; readonly path: "fallback"; readonly reason: string; readonly bytes: number }
  | { readonly id: string; readonly path: "failed"; readonly reason: string; readonly bytes: number }

export type PlannedImage =
  | { readonly id: string; readonly status: "migrated" | "already"; readonly imageId?: string }
  | { readonly id: string; readonly status: "failed"; readonly reason: string }

export type PlannedContainer = { readonly id: string; readonly status: "migrated" | "preexisting" | "skipped"; readonly reason?: string }
export type PlannedTag = { readonly name: string; readonly tag: string; readonly status: "added" | "skipped"; readonly reason?: string }

export interface PlanReport {
  readonly layers: ReadonlyArray<PlannedLayer>
  readonly images: ReadonlyArray<PlannedImage>
  readonly containers: ReadonlyArray<PlannedContainer>
  readonly tags: ReadonlyArray<PlannedTag>
  /** Where `migrate` would stop, as Docker's migration stopped. */
  readonly fatal: string | undefined
  readonly bytesToHash: number
  readonly storeBytes: number
  readonly freeBytes: number
  readonly hashBytesPerSecond: number
  readonly estimatedSeconds: number
  readonly daemon: string | undefined
  /** The root's own structure that is a symlink (followed, as Docker did). */
  readonly symlinks: ReadonlyArray<string>
}

export interface PlanOptions {
  readonly root: string
  readonly driverName: string
  readonly deep: boolean
  readonly jobs: number
  /** For `deep`: the checksums machinery, run dry. */
  readonly checksumsOptions?: Omit<ChecksumsOptions, "dryRun"> & { readonly dryRun: { readonly scratch: string } }
}

/** SHA-256 speed of one core here, measured for about 0.2 s. */
const hashSpeed = (): number => {
  const block = new Uint8Array(8 << 20)
  const started = performance.now()
  let bytes = 0
  const hash = createHash("sha256")
  while (performance.now() - started < 200) {
    hash.update(block)
    bytes += block.length
  }
  hash.digest()
  return bytes / ((performance.now() - started) / 1000)
}

const isSymlink = (file: string) => {
  try {
    return fs.lstatSync(file).isSymbolicLink()
  } catch {
    return false
  }
}

const GZIP_MAGIC = [0x1f, 0x8b]

/** What `checksums` will do with a layer, as far as it shows without hashing. */
const predictLayer = (root: string, id: GraphId, parentError: string | undefined, hasData: boolean): PlannedLayer => {
  const paths = graphPaths(root, id)
  let bytes = 0
  try {
    bytes = Number(new TextDecoder().decode(readSmallFileSync(path.join(paths.dir, "layersize"), SMALL_FILE_LIMIT.value))) || 0
  } catch {
    // no estimate
  }
  if (fs.existsSync(paths.diffId) || isSymlink(paths.diffId)) {
    const stat = fs.statSync(paths.diffId, { throwIfNoEntry: false })
    if (stat === undefined || !stat.isFile() || stat.size > SMALL_FILE_LIMIT.value) {
      return { id, path: "failed", reason: `${paths.diffId}: not a small regular file`, bytes: 0 }
    }
    return { id, path: "preexisting", bytes: 0 }
  }
  if (parentError !== undefined) return { id, path: "failed", reason: parentError, bytes }
  if (!hasData) return { id, path: "failed", reason: "its data is not in the driver", bytes }
  const stat = fs.statSync(paths.tarData, { throwIfNoEntry: false })
  if (stat === undefined) return { id, path: "fallback", reason: `${paths.tarData}: no such file or directory`, bytes }
  if (!stat.isFile()) return { id, path: "fallback", reason: `${paths.tarData}: not a regular file`, bytes }
  const head = new Uint8Array(2)
  const fd = fs.openSync(paths.tarData, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  try {
    fs.readSync(fd, head, 0, 2, 0)
  } finally {
    fs.closeSync(fd)
  }
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) return { id, path: "fallback", reason: `${paths.tarData}: not gzip`, bytes }
  return { id, path: "tarsplit", bytes }
}

/** Plans `migrate` of `options.root`; writes nothing. */
export const plan = (options: PlanOptions): Effect.Effect<PlanReport, never, StorageDriver> =>
  Effect.gen(function* () {
    const { root } = options
    const driver = yield* StorageDriver
    const symlinks = ["graph", options.driverName, CONTAINERS_DIR, "image"].filter((name) => isSymlink(path.join(root, name)))
    const listing = yield* Effect.orElseSucceed(listGraph(root), () => ({ ids: [] as Array<GraphId>, ignored: [] as Array<string> }))
    for (const id of listing.ids) if (isSymlink(path.join(root, "graph", id))) symlinks.push(path.join("graph", id))
    const mappings = yield* Effect.promise(() => readMappings(root).catch(() => new Map<string, string>()))

    // Layers (checksums' step), skipping those of images already migrated, as migrate does.
    const { parents: parentOf, errors: parentErrorOf } = yield* readParents(root, listing.ids)
    const parents: ReadonlyMap<string, string> = parentOf
    const parentErrors: ReadonlyMap<string, string> = parentErrorOf
    const toCheck = listing.ids.filter((id) => !mappings.has(id))
    let layers: Array<PlannedLayer>
    const diffIds = new Map<string, DiffID>()
    if (options.deep && options.checksumsOptions !== undefined) {
      const report = yield* Effect.orElseSucceed(
        checksums({ ...options.checksumsOptions, skip: new Set(mappings.keys()) }),
        () => ({ layers: [] as Array<LayerReport>, ignored: [] }),
      )
      layers = report.layers.map((layer): PlannedLayer =>
        layer.status === "failed"
          ? { id: layer.id, path: "failed", reason: layer.error, bytes: 0 }
          : layer.path === "fallback"
          ? { id: layer.id, path: "fallback", reason: layer.fallbackReason ?? "", bytes: layer.size }
          : { id: layer.id, path: layer.path, bytes: layer.size }
      )
      for (const layer of report.layers) if (layer.status === "done") diffIds.set(layer.id, layer.diffId as DiffID)
    } else {
      layers = []
      const engine = makeCrc64Engine()
      for (const id of toCheck) {
        const hasData = yield* Effect.orElseSucceed(driver.exists(id), () => false)
        const predicted = predictLayer(root, id, parentErrors.get(id), hasData)
        if (predicted.path !== "tarsplit") {
          layers.push(predicted)
          continue
        }
        // The metadata read through and every file it names looked up (no hashing): all but a CRC mismatch shows.
        const checked = yield* Effect.scoped(Effect.gen(function* () {
          const view = yield* driver.view(id)
          return yield* Effect.tryPromise(() =>
            assembleLayer({ tarDataPath: graphPaths(root, id).tarData, root: new LayerRoot(view.root), engine, metadataOnly: true })
          )
        })).pipe(Effect.result)
        layers.push(checked._tag === "Success" ? predicted : {
          id,
          path: "fallback",
          reason: checked.failure instanceof Error && "cause" in checked.failure ? errorMessage(checked.failure.cause) : errorMessage(checked.failure),
          bytes: predicted.bytes,
        })
      }
    }
    const layerById = new Map(layers.map((layer) => [layer.id, layer]))

    // Images, parents first, as migrateImages.
    const listed: ReadonlySet<string> = new Set(listing.ids)
    const images: Array<PlannedImage> = []
    const built = new Map<string, { diffIds: Array<DiffID>; history: Array<History>; imageId?: string }>()
    const failed = new Map<string, string>()
    const builtOf = (v1Id: string, chain: ReadonlyArray<string>): { diffIds: Array<DiffID>; history: Array<History>; imageId?: string } => {
      const known = built.get(v1Id)
      if (known !== undefined) return known
      const earlier = failed.get(v1Id)
      if (earlier !== undefined) throw new Error(earlier)
      try {
        if (chain.length >= MAX_CHAIN_DEPTH) throw new Error(`image chain deeper than ${MAX_CHAIN_DEPTH} layers (from ${chain[0]})`)
        const result = planImage(v1Id, chain)
        built.set(v1Id, result)
        return result
      } catch (error) {
        failed.set(v1Id, errorMessage(error))
        throw error
      }
    }
    const planImage = (v1Id: string, chain: ReadonlyArray<string>) => {
      const parentError = parentErrors.get(v1Id)
      if (parentError !== undefined) throw new Error(parentError)
      if (!listed.has(v1Id)) throw new Error(`${graphPaths(root, v1Id as GraphId).json}: no such file or directory`)
      const parentId = parents.get(v1Id) ?? ""
      let parent: { diffIds: Array<DiffID>; history: Array<History>; imageId?: string } | undefined
      if (parentId !== "") {
        if (chain.includes(parentId)) throw new Error(`parent cycle: ${[...chain, v1Id, parentId].join(" -> ")}`)
        parent = mappings.has(parentId) ? { diffIds: [], history: [] } : builtOf(parentId, [...chain, v1Id])
      }
      const layer = layerById.get(v1Id)
      if (layer?.path === "failed") throw new Error(`${graphPaths(root, v1Id as GraphId).diffId}: no such file or directory (${layer.reason})`)
      const json = readSmallFileSync(graphPaths(root, v1Id as GraphId).json, SMALL_FILE_LIMIT.config)
      const diffId = diffIds.get(v1Id) ?? EMPTY_LAYER_DIFF_ID
      const all = [...(parent?.diffIds ?? []), diffId]
      const tree = parseJsonTree(json)
      const history = [...(parent?.history ?? []), historyFromTree(tree)]
      const config = makeImageConfig(json, all, history, tree)
      const exact = options.deep && !mappings.has(parentId) && (parent === undefined || parent.imageId !== undefined)
      return { diffIds: all, history, ...(exact ? { imageId: `sha256:${createHash("sha256").update(config).digest("hex")}` } : {}) }
    }
    for (const id of listing.ids) {
      if (mappings.has(id)) {
        images.push({ id, status: "already" })
        continue
      }
      try {
        const result = builtOf(id, [])
        images.push({ id, status: "migrated", ...(result.imageId === undefined ? {} : { imageId: result.imageId }) })
      } catch {
        images.push({ id, status: "failed", reason: failed.get(id) ?? "" })
      }
    }
    // Parents that are not in graph/ fail too, and migrate lists them.
    for (const [id, reason] of failed) if (!listed.has(id)) images.push({ id, status: "failed", reason })
    images.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const imageById = new Map<string, PlannedImage>()
    for (const image of images) if (!imageById.has(image.id)) imageById.set(image.id, image)
    const migrates = (v1Id: string) => mappings.has(v1Id) || imageById.get(v1Id)?.status === "migrated"
    const imageIdOf = (v1Id: string) => mappings.get(v1Id) ?? (imageById.get(v1Id) as { imageId?: string } | undefined)?.imageId

    // Containers, as migrateContainers.
    const containers: Array<PlannedContainer> = []
    let fatal: string | undefined
    const containersDir = path.join(root, CONTAINERS_DIR)
    const names = (() => {
      try {
        return fs.readdirSync(containersDir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      } catch {
        return []
      }
    })()
    for (const id of names) {
      if (isSymlink(path.join(containersDir, id))) symlinks.push(path.join(CONTAINERS_DIR, id))
      if (fs.existsSync(path.join(containersDir, id, CONFIG_V2))) {
        containers.push({ id, status: "preexisting", reason: `${CONFIG_V2} already there: left alone` })
        continue
      }
      const file = path.join(containersDir, id, CONFIG_LEGACY)
      const legacy = yield* Effect.promise(() => readSmallFile(file, SMALL_FILE_LIMIT.config).catch((error: unknown) => errorText(error)))
      if (typeof legacy === "string") {
        containers.push({ id, status: "skipped", reason: `${file}: ${legacy}` })
        continue
      }
      let image: Uint8Array | undefined
      try {
        image = objectMembers(legacy).get("Image")
      } catch (error) {
        containers.push({ id, status: "skipped", reason: errorMessage(error) })
        continue
      }
      if (image === undefined) {
        fatal = `invalid container configuration for ${id}`
        break
      }
      const node = parseJsonTree(image)
      if (node.kind !== "string") containers.push({ id, status: "skipped", reason: "Image is not a string" })
      else if (!migrates(node.value)) containers.push({ id, status: "skipped", reason: `image not migrated: ${node.value}` })
      else containers.push({ id, status: "migrated" })
    }

    // Tags, as migrateTags.
    const tags: Array<PlannedTag> = []
    if (fatal === undefined && !fs.existsSync(path.join(root, MIGRATION_TAGS))) {
      const legacy = yield* Effect.promise(() => readLegacyRepositories(root, options.driverName).catch((error: unknown) => errorMessage(error)))
      if (typeof legacy === "string") fatal = `tags: ${legacy}`
      const taken = new Map<string, string>()
      for (const { name, tags: pairs } of typeof legacy === "string" ? [] : legacy ?? []) {
        for (const [tag, v1Id] of pairs) {
          if (!migrates(v1Id)) {
            tags.push({ name, tag, status: "skipped", reason: `image ${JSON.stringify(v1Id)} was not migrated` })
            continue
          }
          let key: string
          try {
            key = legacyReference(name, tag).key
          } catch (error) {
            tags.push({ name, tag, status: "skipped", reason: errorMessage(error) })
            continue
          }
          const identity = imageIdOf(v1Id) ?? v1Id
          const old = taken.get(key)
          if (old !== undefined && old !== identity) {
            tags.push({ name, tag, status: "skipped", reason: `conflict: ${key} is already set` })
            continue
          }
          taken.set(key, identity)
          tags.push({ name, tag, status: "added" })
        }
      }
    }

    const bytesToHash = layers.filter((l) => l.path === "tarsplit" || l.path === "fallback").reduce((sum, l) => sum + l.bytes, 0)
    let storeBytes = 0
    for (const layer of layers) {
      const tarData = fs.statSync(graphPaths(root, layer.id as GraphId).tarData, { throwIfNoEntry: false })
      storeBytes += (tarData?.size ?? 0) + 5 * 4096 // tar-split copy and four small files in a directory
    }
    storeBytes += images.filter((i) => i.status === "migrated").length * 8192
    const free = yield* Effect.promise(() => fs.promises.statfs(root).then((s) => s.bavail * s.bsize, () => 0))
    const speed = options.deep ? 0 : hashSpeed()
    const estimatedSeconds = speed > 0 ? bytesToHash / (speed * Math.max(1, Math.min(options.jobs, layers.length))) : 0
    const daemon = yield* Effect.promise(() => findDaemon(root))
    return {
      layers,
      images,
      containers,
      tags,
      fatal,
      bytesToHash,
      storeBytes,
      freeBytes: free,
      hashBytesPerSecond: speed,
      estimatedSeconds,
      daemon,
      symlinks,
    }
  })

