/**
 * Docker 1.10's image store (`image/<driver>/imagedb/`): configs named by
 * their SHA-256 under `content/sha256/`, an image's parent under
 * `metadata/sha256/<id>/parent`; and the distribution metadata
 * (`distribution/`) that maps a layer's diffID to its registry blob digest.
 *
 * Writers take the batch (`StagedWrites`) their files join; without one, each
 * call commits its own.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { readSmallFile, readSmallFileIfPresentSync, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import * as path from "node:path"
import { goQuote } from "../go/GoJson.ts"
import type { DiffID, ImageID } from "../Ids.ts"
import { StagedWrites } from "./StagedWrites.ts"
import { makeDirectories } from "./StoreFiles.ts"

export const IMAGEDB = "imagedb"
export const DISTRIBUTION = "distribution"

const hexOf = (digest: string) => digest.slice(digest.indexOf(":") + 1)

/** Creates the directories the 1.10 daemon creates when it opens its stores. */
export const openImageStore = async (storeRoot: string): Promise<void> => {
  await makeDirectories(path.join(storeRoot, IMAGEDB, "content", "sha256"), 0o700)
  await makeDirectories(path.join(storeRoot, IMAGEDB, "metadata", "sha256"), 0o700)
  await makeDirectories(path.join(storeRoot, "layerdb"), 0o700)
  await makeDirectories(path.join(storeRoot, DISTRIBUTION), 0o700)
}

/** Runs `write` in `writes`, or in a batch of its own, committed. */
/** The image store's directories of one entry per image or layer, staged whole by a batch that may fill them (see `StagedWrites`). */
export const stageImageCollections = (storeRoot: string, writes: StagedWrites): void => {
  writes.stageCollection(path.join(storeRoot, IMAGEDB, "content", "sha256"), 0o700)
  writes.stageCollection(path.join(storeRoot, IMAGEDB, "metadata", "sha256"), 0o700)
  writes.stageCollection(path.join(storeRoot, DISTRIBUTION, "v2metadata-by-diffid", "sha256"), 0o755)
  writes.stageCollection(path.join(storeRoot, DISTRIBUTION, "diffid-by-digest", "sha256"), 0o755)
}

const inBatch = <A>(storeRoot: string, writes: StagedWrites | undefined, write: (writes: StagedWrites) => A): A => {
  if (writes !== undefined) return write(writes)
  const own = new StagedWrites([storeRoot])
  const result = write(own)
  own.commit()
  return result
}

/** Stores a config; its ID is the SHA-256 of its bytes. */
export const putImageConfig = (storeRoot: string, config: Uint8Array, writes?: StagedWrites): ImageID =>
  inBatch(storeRoot, writes, (batch) => {
    const hex = createHash("sha256").update(config).digest("hex")
    batch.writeFile(path.join(storeRoot, IMAGEDB, "content", "sha256", hex), config, 0o600)
    return `sha256:${hex}` as ImageID
  })

/** Records an image's parent (`SetParent`). */
export const setImageParent = (storeRoot: string, id: ImageID, parent: ImageID, writes?: StagedWrites): void =>
  inBatch(storeRoot, writes, (batch) => {
    const dir = path.join(storeRoot, IMAGEDB, "metadata", "sha256", hexOf(id))
    batch.makeDirectory(dir, 0o700)
    batch.writeFile(path.join(dir, "parent"), parent, 0o600)
  })

/** The stored config of an image, if any. */
export const readImageConfig = (storeRoot: string, id: ImageID): Promise<Uint8Array | undefined> =>
  readSmallFile(path.join(storeRoot, IMAGEDB, "content", "sha256", hexOf(id)), SMALL_FILE_LIMIT.storedConfig).catch(() => undefined)

/**
 * `V2MetadataService.Add`: the blob digest joins the diffID's list (moved to
 * the end if already there, at most 50 kept), and the digest maps to the diffID.
 */
export const addV2Metadata = (storeRoot: string, diffId: DiffID, blobDigest: string, writes?: StagedWrites): void =>
  inBatch(storeRoot, writes, (batch) => {
    const byDiffId = path.join(storeRoot, DISTRIBUTION, "v2metadata-by-diffid", "sha256", hexOf(diffId))
    let entries: Array<{ Digest: string; SourceRepository: string }> = []
    try {
      const staged = batch.stagedBytes(byDiffId)
      const bytes = staged ?? readSmallFileIfPresentSync(byDiffId, SMALL_FILE_LIMIT.value)
      const parsed: unknown = bytes === undefined ? [] : JSON.parse(new TextDecoder().decode(bytes))
      if (Array.isArray(parsed)) {
        entries = parsed.filter((e): e is { Digest: string; SourceRepository: string } =>
          typeof e === "object" && e !== null && typeof e.Digest === "string"
        ).map((e) => ({ Digest: e.Digest, SourceRepository: typeof e.SourceRepository === "string" ? e.SourceRepository : "" }))
      }
    } catch {
      entries = []
    }
    entries = entries.filter((e) => !(e.Digest === blobDigest && e.SourceRepository === ""))
    entries.push({ Digest: blobDigest, SourceRepository: "" })
    entries = entries.slice(-50)
    const json = `[${entries.map((e) => `{"Digest":${goQuote(e.Digest)},"SourceRepository":${goQuote(e.SourceRepository)}}`).join(",")}]`
    batch.makeDirectory(path.dirname(byDiffId), 0o755)
    batch.writeFile(byDiffId, json, 0o644, true)
    const byDigest = path.join(storeRoot, DISTRIBUTION, "diffid-by-digest", blobDigest.slice(0, blobDigest.indexOf(":")), hexOf(blobDigest))
    batch.makeDirectory(path.dirname(byDigest), 0o755)
    batch.writeFile(byDigest, diffId, 0o644)
  })
