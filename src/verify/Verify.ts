/**
 * `verify`: an offline check of a Docker 1.10+ store (`image/<driver>/`),
 * ours or any daemon's: every image config hashes to its ID and its
 * `rootfs.diff_ids` give chain IDs that are in `layerdb`; every layer's
 * `diff`, `size`, `cache-id`, `parent` and `tar-split.json.gz` agree, and its
 * tar, rebuilt from tar-split and the driver's files, hashes to its `diff`
 * (not with `quick`); image parents exist; every reference in
 * `repositories.json` resolves; every container's `config.v2.json` names an
 * existing image and has its mount in `layerdb/mounts/`. Read-only.
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { makeCrc64Engine } from "../crc/Crc64Engine.ts"
import { type ChainID, type DiffID, type GraphId, parseDiffId } from "../Ids.ts"
import { LayerRoot } from "../tar/LayerPath.ts"
import { chainIdOf } from "../store/LayerStore.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { readSmallFile, readSmallText, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { StorageDriver } from "../driver/StorageDriver.ts"
import { assembleLayer } from "../tar/TarSplitAssembler.ts"

/** One thing wrong, with the item it concerns and the file that shows it. */
export interface Problem {
  readonly kind: "image" | "layer" | "mount" | "reference" | "container" | "store"
  readonly item: string
  readonly file: string
  readonly problem: string
}

export interface VerifyReport {
  readonly images: number
  readonly layers: number
  readonly mounts: number
  readonly references: number
  readonly containers: number
  /** Layers whose data was rebuilt and hashed (0 with `quick`). */
  readonly layersHashed: number
  readonly problems: ReadonlyArray<Problem>
}

export interface VerifyOptions {
  readonly root: string
  /** The store's driver: `image/<driver>/`. */
  readonly driverName: string
  /** Skip rebuilding layer data. */
  readonly quick: boolean
  readonly onLayerHashed?: ((bytes: number) => void) | undefined
}

const HEX64 = /^[0-9a-f]{64}$/
const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
const list = (dir: string): Array<string> => {
  try {
    return fs.readdirSync(dir).sort()
  } catch {
    return []
  }
}

/** Checks the store; never fails: everything found wrong is a `Problem`. */
export const verifyStore = (options: VerifyOptions): Effect.Effect<VerifyReport, never, StorageDriver> =>
  Effect.gen(function* () {
    const store = path.join(options.root, "image", options.driverName)
    const problems: Array<Problem> = []
    const problem = (kind: Problem["kind"], item: string, file: string, what: string) =>
      problems.push({ kind, item, file, problem: what })
    const read = (file: string, limit: number = SMALL_FILE_LIMIT.value) =>
      Effect.promise(() => readSmallText(file, limit).then((text) => ({ text }), (error: unknown) => ({ error: errorMessage(error) })))
    if (!fs.existsSync(store)) {
      problem("store", options.driverName, store, "no such store")
      return { images: 0, layers: 0, mounts: 0, references: 0, containers: 0, layersHashed: 0, problems }
    }

    // Layers: what each directory says, checked against itself and its parent.
    const layerRoot = path.join(store, "layerdb", "sha256")
    const layers = new Map<ChainID, { diffId: DiffID; cacheId: string; size: number }>()
    const layerNames = list(layerRoot)
    for (const hex of layerNames) {
      const dir = path.join(layerRoot, hex)
      const chainId = `sha256:${hex}` as ChainID
      if (!HEX64.test(hex)) {
        problem("layer", hex, dir, "not a chain ID")
        continue
      }
      const diffText = yield* read(path.join(dir, "diff"))
      const sizeText = yield* read(path.join(dir, "size"))
      const cacheText = yield* read(path.join(dir, "cache-id"))
      const parentText = yield* read(path.join(dir, "parent"))
      const diffId = "text" in diffText ? parseDiffId(diffText.text) : undefined
      if (diffId === undefined) {
        problem("layer", chainId, path.join(dir, "diff"), "error" in diffText ? diffText.error : `not a digest: ${JSON.stringify(diffText.text)}`)
        continue
      }
      if (!("text" in sizeText) || !/^[0-9]+$/.test(sizeText.text)) {
        problem("layer", chainId, path.join(dir, "size"), "error" in sizeText ? sizeText.error : `not a decimal size: ${JSON.stringify(sizeText.text)}`)
      }
      if (!("text" in cacheText) || cacheText.text === "" || /[\s/]/.test(cacheText.text)) {
        problem("layer", chainId, path.join(dir, "cache-id"), "error" in cacheText ? cacheText.error : `not a cache ID: ${JSON.stringify(cacheText.text)}`)
        continue
      }
      let parent: ChainID | undefined
      if ("text" in parentText) {
        const parsed = parseDiffId(parentText.text)
        if (parsed === undefined) problem("layer", chainId, path.join(dir, "parent"), `not a digest: ${JSON.stringify(parentText.text)}`)
        else parent = parsed as string as ChainID
      }
      if (parent !== undefined && !fs.existsSync(path.join(layerRoot, parent.slice(7)))) {
        problem("layer", chainId, path.join(dir, "parent"), `its parent ${parent} is not in layerdb`)
      }
      if (chainIdOf(parent, diffId) !== chainId) {
        problem("layer", chainId, dir, parent === undefined
          ? `its diff ${diffId} is not its chain ID (a base layer) — a parent file missing?`
          : `its chain ID is not SHA-256 of "${parent} ${diffId}"`)
      }
      if (!fs.existsSync(path.join(dir, "tar-split.json.gz"))) problem("layer", chainId, path.join(dir, "tar-split.json.gz"), "missing")
      layers.set(chainId, { diffId, cacheId: cacheText.text, size: "text" in sizeText ? Number(sizeText.text) : NaN })
    }

    // Layer data: exists in the driver, and rebuilt from tar-split it hashes to its diff.
    const driver = yield* StorageDriver
    let layersHashed = 0
    const engine = options.quick ? undefined : makeCrc64Engine()
    for (const [chainId, layer] of layers) {
      const dir = path.join(layerRoot, chainId.slice(7))
      const exists = yield* Effect.orElseSucceed(driver.exists(layer.cacheId as GraphId), () => false)
      if (!exists) {
        problem("layer", chainId, path.join(dir, "cache-id"), `its data ${layer.cacheId} is not in the ${driver.name} driver`)
        continue
      }
      if (engine === undefined || !fs.existsSync(path.join(dir, "tar-split.json.gz"))) continue
      const rebuilt = yield* Effect.scoped(Effect.gen(function* () {
        const view = yield* driver.view(layer.cacheId as GraphId)
        return yield* Effect.tryPromise(() =>
          assembleLayer({
            tarDataPath: path.join(dir, "tar-split.json.gz"),
            root: new LayerRoot(view.root),
            engine,
            onProgress: options.onLayerHashed,
          })
        )
      })).pipe(Effect.result)
      layersHashed++
      if (rebuilt._tag === "Failure") {
        const cause = rebuilt.failure
        problem("layer", chainId, path.join(dir, "tar-split.json.gz"), `its tar cannot be rebuilt: ${
          typeof cause === "object" && cause !== null && "cause" in cause ? errorMessage(cause.cause) : errorMessage(cause)
        }`)
        continue
      }
      if (`sha256:${rebuilt.success.sha256}` !== layer.diffId) {
        problem("layer", chainId, path.join(dir, "diff"), `its tar hashes to sha256:${rebuilt.success.sha256}, not to ${layer.diffId}`)
      }
      if (rebuilt.success.size !== layer.size && Number.isFinite(layer.size)) {
        problem("layer", chainId, path.join(dir, "size"), `its files add up to ${rebuilt.success.size} bytes, not ${layer.size}`)
      }
    }

    // Images: content named by its hash, layers in layerdb, parents present.
    const contentDir = path.join(store, "imagedb", "content", "sha256")
    const images = new Set<string>()
    for (const hex of list(contentDir)) {
      const file = path.join(contentDir, hex)
      const id = `sha256:${hex}`
      const bytes = yield* Effect.promise(() => readSmallFile(file, SMALL_FILE_LIMIT.storedConfig).catch((error: unknown) => errorMessage(error)))
      if (typeof bytes === "string") {
        problem("image", id, file, bytes)
        continue
      }
      images.add(id)
      if (sha256Hex(bytes) !== hex) {
        problem("image", id, file, `its content hashes to sha256:${sha256Hex(bytes)}, not to its name`)
        continue
      }
      let diffIds: Array<string>
      try {
        const config = JSON.parse(new TextDecoder().decode(bytes)) as { rootfs?: { diff_ids?: Array<string> } }
        diffIds = config.rootfs?.diff_ids ?? []
      } catch (error) {
        problem("image", id, file, `not JSON: ${errorMessage(error)}`)
        continue
      }
      let chain: ChainID | undefined
      for (const text of diffIds) {
        const diffId = parseDiffId(text)
        if (diffId === undefined) {
          problem("image", id, file, `rootfs.diff_ids holds ${JSON.stringify(text)}, not a digest`)
          break
        }
        chain = chainIdOf(chain, diffId)
        if (!layers.has(chain) && !fs.existsSync(path.join(layerRoot, chain.slice(7)))) {
          problem("image", id, file, `its layer ${chain} (diffID ${diffId}) is not in layerdb`)
          break
        }
      }
    }
    const metadataDir = path.join(store, "imagedb", "metadata", "sha256")
    for (const hex of list(metadataDir)) {
      const parentFile = path.join(metadataDir, hex, "parent")
      if (!fs.existsSync(parentFile)) continue
      const parent = yield* read(parentFile)
      if (!("text" in parent) || !images.has(parent.text)) {
        problem("image", `sha256:${hex}`, parentFile, `its parent ${"text" in parent ? parent.text : parent.error} is not in the image store`)
      }
    }

    // References.
    const repositoriesFile = path.join(store, "repositories.json")
    let references = 0
    const repositories = yield* read(repositoriesFile, SMALL_FILE_LIMIT.repositories)
    if ("text" in repositories) {
      try {
        const parsed = JSON.parse(repositories.text) as { Repositories?: Record<string, Record<string, string>> }
        for (const [name, refs] of Object.entries(parsed.Repositories ?? {})) {
          for (const [reference, id] of Object.entries(refs ?? {})) {
            references++
            if (!images.has(id)) problem("reference", reference, repositoriesFile, `names ${id}, which is not in the image store (in ${name})`)
          }
        }
      } catch (error) {
        problem("reference", "repositories.json", repositoriesFile, `not JSON: ${errorMessage(error)}`)
      }
    }

    // Mounts and containers.
    const mountsDir = path.join(store, "layerdb", "mounts")
    const mounts = new Set(list(mountsDir))
    for (const name of mounts) {
      const dir = path.join(mountsDir, name)
      const mountId = yield* read(path.join(dir, "mount-id"))
      if (!("text" in mountId)) {
        problem("mount", name, path.join(dir, "mount-id"), mountId.error)
        continue
      }
      const parent = yield* read(path.join(dir, "parent"))
      if ("text" in parent && !fs.existsSync(path.join(layerRoot, parent.text.replace(/^sha256:/, "")))) {
        problem("mount", name, path.join(dir, "parent"), `its parent layer ${parent.text} is not in layerdb`)
      }
    }
    let containers = 0
    const containersDir = path.join(options.root, "containers")
    for (const id of list(containersDir)) {
      const file = path.join(containersDir, id, "config.v2.json")
      if (!fs.existsSync(file)) continue
      containers++
      const config = yield* read(file, SMALL_FILE_LIMIT.config)
      if (!("text" in config)) {
        problem("container", id, file, config.error)
        continue
      }
      let image: unknown
      try {
        image = (JSON.parse(config.text) as { Image?: unknown }).Image
      } catch (error) {
        problem("container", id, file, `not JSON: ${errorMessage(error)}`)
        continue
      }
      if (typeof image !== "string" || !images.has(image)) problem("container", id, file, `its image ${String(image)} is not in the image store`)
      if (!mounts.has(id)) problem("container", id, path.join(mountsDir, id), "its mount is not in layerdb/mounts")
    }
    return { images: images.size, layers: layers.size, mounts: mounts.size, references, containers, layersHashed, problems }
  })
