/**
 * overlay2 as `migrate`'s target driver: each image layer's tar (rebuilt from
 * tar-split and the source driver's files, or regenerated) streamed into a
 * new `overlay2/<cache-id>/diff` as Docker's overlay2 `ApplyDiff` unpacks it,
 * checked against the layer's diffID, and renamed into place whole.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Fiber } from "effect"
import type { HashPool } from "../hash/HashPool.ts"
import { type DiffID, diffIdFromHex, type GraphId } from "../Ids.ts"
import { graphPaths } from "../legacy/LegacyGraph.ts"
import { TEMPORARY_PREFIX } from "../store/StoreFiles.ts"
import { type Crc64Engine, makeCrc64Engine } from "../crc/Crc64Engine.ts"
import { regenerateLayer } from "../tar/RegenerateLayer.ts"
import { StorageDriver } from "../driver/StorageDriver.ts"
import { type LayerSink, streamLayerTar } from "../export/LayerTarStream.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { type AheadSlot, type TargetDriver, type TargetLayer, TargetLayerError, type TargetMount } from "../driver/TargetDriver.ts"
import { abandonLayer, beginLayer, commitLayer, type LayerUnderConstruction, newLayerId, openOverlay2Home, OVERLAY2, sweepOverlay2 } from "./Overlay2Layout.ts"
import { copyOverlayUpper } from "./CopyOverlayUpper.ts"
import { overlayTarUnpacker } from "./OverlayDiffApplier.ts"

let engine: Crc64Engine | undefined

/** A sink that unpacks the tar into `diff` (emptied again before a retry). */
const applyingSink = (diff: string, onBytes: (bytes: number) => void): LayerSink => {
  const emptyDiff = () => {
    for (const name of fs.readdirSync(diff)) fs.rmSync(path.join(diff, name), { recursive: true, force: true })
  }
  emptyDiff()
  const unpacker = overlayTarUnpacker(new Uint8Array(Buffer.from(diff)))
  return {
    write: (bytes) => {
      unpacker.write(bytes)
      onBytes(bytes.length)
    },
    close: unpacker.finish,
    discard: () => {
      unpacker.abort()
      emptyDiff()
    },
  }
}

/**
 * Streams the graph layer `graphId`'s tar into `layer.diff`; fails unless it
 * hashes to `diffId`.
 */
export const unpackGraphLayer = (
  graphRoot: string,
  layer: { readonly graphId: GraphId; readonly graphParent: string; readonly diffId: string | undefined },
  diff: string,
  onBytes: (bytes: number) => void,
) =>
  Effect.gen(function* () {
    const failed = (detail: string) => new TargetLayerError({ layer: layer.graphId, detail })
    let mismatch: { declared: string; actual: string } | undefined
    const streamed = yield* Effect.mapError(
      streamLayerTar(graphRoot, layer.graphId, layer.graphParent, () => applyingSink(diff, onBytes), (declared, actual) => {
        mismatch = { declared, actual }
      }),
      (error) => failed(error.detail),
    )
    if (mismatch !== undefined) {
      // Docker 1.10 trusted the helper files, and so does the store migrate writes: the data is kept as it is.
      yield* Effect.logWarning(
        `layer ${layer.graphId}: its tar hashes to ${mismatch.actual}, not to ${mismatch.declared} as its helper files say; kept as Docker 1.10 kept it`,
      )
      return streamed
    }
    if (layer.diffId !== undefined && streamed.diffId !== layer.diffId) {
      return yield* failed(`its tar hashes to ${streamed.diffId}, not to its diffID ${layer.diffId}`)
    }
    return streamed
  })

/** A layer's `diff/` unpacked ahead by a pool worker, under a temporary name in `overlay2/`. */
interface UnpackedAhead {
  readonly dir: string
  readonly diffId: string
}

/** The overlay2 target driver writing into `<targetRoot>/overlay2`; `root` is the graph's Docker root (the journal's). */
export const overlay2Target = (options: {
  readonly root: string
  readonly targetRoot: string
  readonly onBytes?: ((bytes: number) => void) | undefined
  /** The layer workers: with them, layers whose helper files exist are unpacked ahead, in parallel. */
  readonly pool?: HashPool | undefined
}): TargetDriver => {
  const home = path.join(options.targetRoot, OVERLAY2)
  const onBytes = options.onBytes ?? (() => {})
  const ahead = new Map<string, Promise<UnpackedAhead | undefined>>()
  let aheadFiber: Fiber.Fiber<void> | undefined

  /** Unpacks one layer's tar (rebuilt from its helper files) in a worker; `undefined` when that did not give its diffID. */
  const unpackAhead = (pool: HashPool, layer: { readonly graphId: GraphId; readonly diffId: DiffID }) =>
    Effect.scoped(Effect.gen(function* () {
      const driver = yield* StorageDriver
      const view = yield* driver.view(layer.graphId)
      const dir = yield* Effect.try(() => aheadDir(layer.graphId))
      const outcome = yield* Effect.promise(() => pool.unpack(graphPaths(options.root, layer.graphId).migrationTarData, view.root, dir))
      if (outcome.ok && diffIdFromHex(outcome.sha256) === layer.diffId) return { dir, diffId: layer.diffId } satisfies UnpackedAhead
      // The layer is made in this thread instead, which says why it fails or warns of a lying helper file.
      fs.rmSync(dir, { recursive: true, force: true })
      return undefined
    })).pipe(Effect.orElseSucceed(() => undefined))

  const aheadDir = (id: GraphId) => {
    openOverlay2Home(options.root, home)
    const dir = path.join(home, `${TEMPORARY_PREFIX}ahead-${id}`)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { mode: 0o755 })
    fs.chmodSync(dir, 0o755)
    return dir
  }

  /** `checksums` unpacks layer `id` into this directory while it hashes it (helper files being written then). */
  const aheadSlot = (id: GraphId): AheadSlot | undefined => {
    if (ahead.has(id)) return undefined
    let dir: string
    try {
      dir = aheadDir(id)
    } catch {
      return undefined // made in this thread later, which names the cause
    }
    const { promise, resolve } = Promise.withResolvers<UnpackedAhead | undefined>()
    ahead.set(id, promise)
    let settled = false
    return {
      dir,
      done: (diffId) => {
        if (settled) return
        settled = true
        if (diffId === undefined) {
          fs.rmSync(dir, { recursive: true, force: true })
          ahead.delete(id) // a regenerated layer: `makeAhead` unpacks it from its new helper files
        }
        resolve(diffId === undefined ? undefined : { dir, diffId })
      },
    }
  }

  const makeAhead = (layers: ReadonlyArray<{ readonly graphId: GraphId; readonly diffId: DiffID }>) =>
    Effect.gen(function* () {
      const pool = options.pool
      // Those unpacked while `checksums` hashed them are there already.
      const todo = layers.filter((layer) => !ahead.has(layer.graphId))
      if (pool === undefined || todo.length === 0) return
      const jobs = todo.map((layer) => ({ layer, ...Promise.withResolvers<UnpackedAhead | undefined>() }))
      for (const job of jobs) ahead.set(job.layer.graphId, job.promise)
      aheadFiber = yield* Effect.forkChild(Effect.forEach(
        jobs,
        (job) => unpackAhead(pool, job.layer).pipe(Effect.tap((made) => Effect.sync(() => job.resolve(made)))),
        { concurrency: pool.size, discard: true },
      ).pipe(Effect.ensuring(Effect.sync(() => jobs.forEach((job) => job.resolve(undefined))))))
    })

  const dropAhead = () =>
    Effect.gen(function* () {
      if (aheadFiber !== undefined) yield* Fiber.await(aheadFiber)
      const left = [...ahead.values()]
      ahead.clear()
      for (const made of yield* Effect.promise(() => Promise.all(left))) {
        if (made !== undefined) fs.rmSync(made.dir, { recursive: true, force: true })
      }
    })

  /** Takes layer `graphId`'s `diff/` unpacked ahead, if it was and hashed to `diffId`. */
  const takeAhead = (layer: TargetLayer) =>
    Effect.gen(function* () {
      const pending = ahead.get(layer.graphId)
      if (pending === undefined) return undefined
      ahead.delete(layer.graphId)
      const made = yield* Effect.promise(() => pending)
      if (made === undefined) return undefined
      if (made.diffId === layer.diffId) return made
      fs.rmSync(made.dir, { recursive: true, force: true })
      return undefined
    })

  const makeLayer = (layer: TargetLayer) =>
    Effect.gen(function* () {
      const failed = (detail: string) => new TargetLayerError({ layer: layer.graphId, detail })
      const cacheId = newLayerId()
      const unpacked = yield* takeAhead(layer)
      const made: LayerUnderConstruction = yield* Effect.try({
        try: () => {
          openOverlay2Home(options.root, home)
          return beginLayer(options.root, home, cacheId, layer.parentCacheId)
        },
        catch: (error) => failed(errorMessage(error)),
      })
      if (unpacked !== undefined) {
        yield* Effect.try({
          try: () => {
            fs.rmdirSync(made.diff)
            fs.renameSync(unpacked.dir, made.diff)
          },
          catch: (error) => failed(errorMessage(error)),
        }).pipe(Effect.tapError(() => Effect.sync(() => abandonLayer(made))))
      } else {
        yield* unpackGraphLayer(options.root, layer, made.diff, onBytes).pipe(
          Effect.tapError(() => Effect.sync(() => abandonLayer(made))),
        )
      }
      yield* Effect.try({
        try: () => commitLayer(options.root, home, made, layer.parentCacheId),
        catch: (error) => failed(errorMessage(error)),
      }).pipe(Effect.tapError(() => Effect.sync(() => abandonLayer(made))))
      return cacheId
    })
  /**
   * A container's layer (`graphId`, over `graphParent` in the source driver)
   * as overlay2 directory `id` over `parentCacheId`: its changes, as Docker's
   * archiver finds them (aufs: its own directory, whiteouts included; a
   * snapshot driver: the difference from its parent's root), unpacked as
   * overlay2 unpacks a layer (whiteouts become 0/0 devices).
   */
  const makeContainerLayer = (id: string, graphId: string, graphParent: string, parentCacheId: string | undefined) =>
    Effect.gen(function* () {
      const failed = (detail: string) => new TargetLayerError({ layer: graphId, detail })
      const driver = yield* StorageDriver
      const made = yield* Effect.try({
        try: () => {
          openOverlay2Home(options.root, home)
          return beginLayer(options.root, home, id, parentCacheId)
        },
        catch: (error) => failed(errorMessage(error)),
      })
      if (driver.containerUpper !== undefined) {
        const upper = yield* Effect.mapError(driver.containerUpper(graphId), (error) => failed(error.message))
        yield* Effect.try({
          try: () => {
            if (upper !== undefined) copyOverlayUpper(new Uint8Array(Buffer.from(upper)), new Uint8Array(Buffer.from(made.diff)))
          },
          catch: (error) => failed(`its changes cannot be copied: ${errorMessage(error)}`),
        }).pipe(Effect.tapError(() => Effect.sync(() => abandonLayer(made))))
      } else yield* Effect.scoped(Effect.gen(function* () {
        const view = yield* Effect.mapError(driver.view(graphId as GraphId), (error) => failed(error.message))
        const parentRoot = driver.layerFiles !== "snapshot" || graphParent === ""
          ? undefined
          : (yield* Effect.mapError(driver.view(graphParent as GraphId), (error) => failed(error.message))).root
        yield* Effect.try({
          try: () => {
            const sink = applyingSink(made.diff, onBytes)
            engine ??= makeCrc64Engine()
            regenerateLayer(
              { root: view.root, parentRoot, layerFiles: driver.layerFiles, tarDataOut: undefined },
              engine,
              () => {},
              sink.write,
            )
            sink.close()
          },
          catch: (error) => failed(`its changes cannot be read: ${errorMessage(error)}`),
        })
      })).pipe(Effect.tapError(() => Effect.sync(() => abandonLayer(made))))
      yield* Effect.try({
        try: () => commitLayer(options.root, home, made, parentCacheId),
        catch: (error) => failed(errorMessage(error)),
      }).pipe(Effect.tapError(() => Effect.sync(() => abandonLayer(made))))
    })

  const makeMount = (mount: TargetMount) =>
    Effect.gen(function* () {
      // Docker names a container's layers with a new random ID, and its init layer `<mount ID>-init`.
      const mountId = newLayerId()
      let parentCacheId = mount.imageCacheId
      let initId: string | undefined
      if (mount.initGraphId !== undefined) {
        initId = `${mountId}-init`
        yield* makeContainerLayer(initId, mount.initGraphId, mount.imageGraphId, parentCacheId)
        parentCacheId = initId
      }
      yield* makeContainerLayer(mountId, mount.container, mount.initGraphId ?? mount.imageGraphId, parentCacheId)
      return { mountId, initId }
    })

  return {
    name: OVERLAY2,
    root: options.targetRoot,
    prepare: (inUse) => sweepOverlay2(options.root, home, inUse),
    aheadSlot,
    makeAhead,
    dropAhead,
    makeLayer,
    makeMount,
  }
}
