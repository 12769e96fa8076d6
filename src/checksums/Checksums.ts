/**
 * The `checksums` pass: for every layer of the legacy graph without helper
 * files, compute its diffID and size and write the helper files, as Docker's
 * `CalculateLayerChecksums` did: through tar-split when it can, else by
 * regenerating the layer's tar from its files (the fallback). Layers that
 * already have `.migration-diffid` are trusted as they are. One bad layer
 * never stops the others.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as fsSync from "node:fs"
import { readSmallFileSync, readSmallText, SMALL_FILE_LIMIT, SmallFileError } from "../platform/RegularFile.ts"
import { isWriteError } from "../platform/ErrorCode.ts"
import { Effect, Schema } from "effect"
import type { HashPool } from "../hash/HashPool.ts"
import type { AheadSlot } from "../driver/TargetDriver.ts"
import * as path from "node:path"
import { clearTemporaries, HelperFileError, temporaryTarData, writeHelperFiles } from "../legacy/HelperFiles.ts"
import { diffIdFromHex, type GraphId } from "../Ids.ts"
import { errorText, graphPaths, type GraphRootError, listGraph, readParent } from "../legacy/LegacyGraph.ts"
import { JOURNAL, record } from "../rollback/Journal.ts"
import { regenerationParentRoot, StorageDriver } from "../driver/StorageDriver.ts"

/** Neither tar-split nor regenerating the tar gave the layer's diffID. */
export class FallbackError extends Schema.TaggedError<FallbackError>()("FallbackError", {
  layer: Schema.String,
  reason: Schema.Literals(["ParentMissing", "RegenerateFailed"]),
  detail: Schema.String,
  /** Why the tar-split path failed first. */
  tarSplit: Schema.String,
}) {
  override get message(): string {
    return `Cannot compute diffID of layer ${this.layer}: tar-split failed (${this.tarSplit}) and so did ` +
      `regenerating its tar: ${this.detail}`
  }
}

/** How a layer's helper files came to be. */
export type ChecksumPath = "tarsplit" | "fallback" | "preexisting"

/** The outcome for one layer, as `--json` prints it. */
export type LayerReport =
  | {
    readonly id: GraphId
    readonly status: "done"
    readonly path: ChecksumPath
    readonly diffId: string
    readonly size: number
    /** Why tar-split failed, when the tar was regenerated: the message, and its kind. */
    readonly fallbackReason?: string
    readonly fallbackKind?: string
  }
  | {
    readonly id: GraphId
    readonly status: "failed"
    readonly reason: string
    readonly error: string
    /** The cause was the file system written to (full, read-only): a re-run after it is mended does the layer. */
    readonly writeError?: true
  }

/** The texts of a done layer's `.migration-diffid` and `.migration-size`, as read or written by the pass. */
export interface HelperTexts {
  readonly diffId: string
  readonly size: string
}

export interface ChecksumsReport {
  readonly layers: ReadonlyArray<LayerReport>
  /** Done layers' helper file texts, so `migrate`'s images pass need not read them again. */
  readonly helperTexts: ReadonlyMap<GraphId, HelperTexts>
  /** Entries of `graph/` that are not layer IDs (`_tmp`, short names, ...), ignored as Docker does. */
  readonly ignored: ReadonlyArray<string>
}

export interface ChecksumsOptions {
  readonly root: string
  readonly pool: HashPool
  /** Layers being prepared at once (opening views, reading metadata) besides the ones hashing. */
  readonly concurrency: number
  /** Layers of images already migrated (`.migration-v1-images.json`): Docker did not checksum them again. */
  readonly skip?: ReadonlySet<string> | undefined
  readonly onPlanned?: ((layers: number, estimatedBytes: number) => void) | undefined
  readonly onLayerDone?: ((report: LayerReport) => void) | undefined
  /**
   * Compute everything, write nothing into the root (`plan --deep`): no helper
   * files, no journal; a regenerated layer's tar-split goes to this directory
   * outside the root and is removed.
   */
  readonly dryRun?: { readonly scratch: string } | undefined
  /** A directory to unpack a layer's tar into while it is hashed through tar-split (`migrate --target-driver`). */
  readonly aheadSlot?: ((id: GraphId) => AheadSlot | undefined) | undefined
}

/** Runs the pass over every layer under `options.root`. */
export const checksums = (
  options: ChecksumsOptions,
): Effect.Effect<ChecksumsReport, GraphRootError, StorageDriver> =>
  Effect.gen(function* () {
    const listing = yield* listGraph(options.root)
    const ids = listing.ids.filter((id) => !(options.skip?.has(id) ?? false))
    const ignored = listing.ignored
    for (const name of ignored) yield* Effect.logDebug(`ignoring graph/${name}: not a layer ID`)
    // Layers with helper files are reported here, without an effect each: a re-run (or a
    // pre-checksummed graph) is mostly these, and a fiber per layer was most of its time.
    const reports = new Map<GraphId, LayerReport>()
    const helperTexts = new Map<GraphId, HelperTexts>()
    for (const id of ids) {
      const existing = readExisting(graphPaths(options.root, id))
      if (existing === undefined) continue
      reports.set(id, existingReport(id, existing))
      if (existing.unsafe === undefined) helperTexts.set(id, { diffId: existing.diffId, size: existing.sizeText })
    }
    const todo = ids.filter((id) => !reports.has(id))
    const estimate = yield* Effect.promise(() => estimateBytes(options.root, todo))
    options.onPlanned?.(ids.length, estimate)
    for (const report of reports.values()) {
      if (report.status === "failed") yield* Effect.logError(`layer ${report.id}: ${report.error}`)
      else yield* Effect.logDebug(`layer ${report.id}: helper files present, trusted as they are`)
      options.onLayerDone?.(report)
    }
    const computed = yield* Effect.forEach(
      todo,
      (id) =>
        checksumLayer(options, id).pipe(
          Effect.tap((report) => Effect.sync(() => options.onLayerDone?.(report))),
        ),
      { concurrency: options.concurrency },
    )
    computed.forEach((report, i) => {
      reports.set(todo[i]!, report)
      // What writeHelperFiles wrote (a layer found done meanwhile is read again by whoever needs it).
      if (report.status === "done" && report.path !== "preexisting") helperTexts.set(todo[i]!, { diffId: report.diffId, size: String(report.size) })
    })
    return { layers: ids.map((id) => reports.get(id)!), helperTexts, ignored }
  })

/** One layer, never failing: every problem becomes a failed report. */
const checksumLayer = (options: ChecksumsOptions, id: GraphId): Effect.Effect<LayerReport, never, StorageDriver> => {
  const paths = graphPaths(options.root, id)
  let slot: AheadSlot | undefined
  const work = Effect.gen(function* () {
    const existing = readExisting(paths)
    if (existing !== undefined) {
      // Written since the pass began (by another run): trusted as the layers found done at its start.
      const report = existingReport(id, existing)
      if (report.status === "failed") yield* Effect.logError(`layer ${id}: ${report.error}`)
      else yield* Effect.logDebug(`layer ${id}: helper files present, trusted as they are`)
      return report
    }
    const target = yield* Effect.promise(() => fs.readlink(paths.dir).catch(() => undefined))
    // The root's structure is the admin's: a symlinked layer directory is followed, as Docker did, and said.
    if (target !== undefined) yield* Effect.logInfo(`graph/${id} is a symlink to ${target}: followed, as Docker did`)
    const parent = yield* readParent(options.root, id) // Docker read it first: a bad JSON fails the layer.
    if (options.dryRun === undefined) yield* clearTemporaries(id, paths)
    const driver = yield* StorageDriver
    if (options.dryRun === undefined) slot = options.aheadSlot?.(id)
    const into = slot === undefined ? undefined : { unpackInto: slot.dir }
    const outcome = yield* Effect.scoped(
      Effect.flatMap(driver.view(id), (view) => Effect.promise(() => options.pool.hash(paths.tarData, view.root, into))),
    )
    if (outcome.ok) {
      const diffId = diffIdFromHex(outcome.sha256)
      if (options.dryRun === undefined) {
        yield* journalHelpers(options.root, id)
        yield* writeHelperFiles(id, paths, { diffId, size: outcome.size, tarData: { kind: "link", from: paths.tarData } })
      }
      slot?.done(diffId)
      yield* Effect.logInfo(`calculated checksum for layer ${id}: ${diffId}`)
      return { id, status: "done", path: "tarsplit", diffId, size: outcome.size } satisfies LayerReport
    }
    const fallbackReason = outcome.detail
    yield* Effect.logWarning(`could not get checksum for ${id} with tar-split: ${fallbackReason}. Attempting fallback.`)
    const regenerated = yield* regenerate(options, id, parent, fallbackReason)
    const diffId = diffIdFromHex(regenerated.sha256)
    if (options.dryRun === undefined) {
      yield* journalHelpers(options.root, id)
      yield* writeHelperFiles(id, paths, { diffId, size: regenerated.size, tarData: { kind: "written" } })
    } else yield* Effect.promise(() => fs.rm(regeneratedTarData(options, id), { force: true }))
    yield* Effect.logInfo(`calculated checksum for layer ${id} by regenerating its tar: ${diffId}`)
    return {
      id,
      status: "done",
      path: "fallback",
      diffId,
      size: regenerated.size,
      fallbackReason,
      fallbackKind: outcome.reason,
    } satisfies LayerReport
  })
  return work.pipe(
    Effect.ensuring(Effect.sync(() => slot?.done(undefined))),
    Effect.catch((error) =>
      Effect.as(
        Effect.logError(error.message),
        {
          id,
          status: "failed",
          reason: `${error._tag}.${"reason" in error ? error.reason : "WriteFailed"}`,
          error: error.message,
          ...(isWriteError(error.message) ? { writeError: true } : {}),
        } satisfies LayerReport,
      )
    ),
  )
}

/**
 * The fallback: the layer's tar regenerated from its files (with its parent's
 * for a child of a snapshot driver) as Docker 1.10's archiver wrote it. Its
 * tar-split goes to a temporary file, removed again if anything fails.
 */
const regenerate = (options: ChecksumsOptions, id: GraphId, parent: string, tarSplit: string) =>
  Effect.gen(function* () {
    const driver = yield* StorageDriver
    const failed = (reason: FallbackError["reason"], detail: string) =>
      new FallbackError({ layer: id, reason, detail, tarSplit })
    const result = yield* Effect.scoped(Effect.gen(function* () {
      const view = yield* driver.view(id)
      const parentRoot = yield* Effect.mapError(regenerationParentRoot(driver, parent), (detail) => failed("ParentMissing", detail))
      return yield* Effect.promise(() =>
        options.pool.regenerate({
          root: view.root,
          parentRoot,
          layerFiles: driver.layerFiles,
          tarDataOut: regeneratedTarData(options, id),
        })
      )
    }))
    if (!result.ok) return yield* failed("RegenerateFailed", result.detail)
    return result
  }).pipe(Effect.tapError(() => Effect.promise(() => fs.rm(regeneratedTarData(options, id), { force: true }))))

/** Where a regenerated layer's tar-split goes: a temporary name beside the helper files, or a dry run's scratch. */
const regeneratedTarData = (options: ChecksumsOptions, id: GraphId) =>
  options.dryRun === undefined ? temporaryTarData(graphPaths(options.root, id)) : path.join(options.dryRun.scratch, `${id}.tar-split.gz`)

/** Records, before they are written, that the layer's helper files are ours (`rollback --checksums` removes them). */
const journalHelpers = (root: string, id: GraphId) =>
  Effect.try({
    try: () => record(root, { op: "helpers", layer: id }),
    catch: (error) => new HelperFileError({ layer: id, path: path.join(root, JOURNAL), detail: errorText(error) }),
  })

/** A layer with `.migration-diffid` is done (Docker's check is this `lstat`); its values are reported as found. */
const readExisting = (paths: ReturnType<typeof graphPaths>) => {
  // Synchronous: the pass over 10,000 checksummed layers is all small reads, several times faster so.
  if (fsSync.lstatSync(paths.diffId, { throwIfNoEntry: false }) === undefined) return undefined
  // One that is a FIFO, a device or huge is not trusted: the layer fails, named with the file.
  let unsafe: string | undefined
  const read = (file: string, otherwise: string) => {
    try {
      return new TextDecoder().decode(readSmallFileSync(file, SMALL_FILE_LIMIT.value))
    } catch (error) {
      if (error instanceof SmallFileError) unsafe ??= error.message
      return otherwise
    }
  }
  const diffId = read(paths.diffId, "")
  const sizeText = read(paths.size, "NaN")
  return { diffId, size: Number(sizeText), sizeText, unsafe }
}

/** The report of a layer whose helper files are there: done as found, or failed when one is unsafe. */
const existingReport = (id: GraphId, existing: NonNullable<ReturnType<typeof readExisting>>): LayerReport =>
  existing.unsafe !== undefined
    ? { id, status: "failed", reason: "BadHelperFile", error: existing.unsafe }
    : { id, status: "done", path: "preexisting", diffId: existing.diffId, size: existing.size }

/** Bytes still to hash, from Docker 1.9's `layersize` files where present (for the ETA only). */
const estimateBytes = async (root: string, ids: ReadonlyArray<GraphId>): Promise<number> => {
  let total = 0
  for (const id of ids) {
    const paths = graphPaths(root, id)
    if (fsSync.lstatSync(paths.diffId, { throwIfNoEntry: false }) !== undefined) continue
    const size = Number(await readSmallText(`${paths.dir}/layersize`, SMALL_FILE_LIMIT.value).catch(() => "0"))
    if (Number.isFinite(size) && size > 0) total += size
  }
  return total
}

