/**
 * The storage driver service: what the core needs from a Docker graph
 * driver's on-disk layout, and nothing about the layout itself.
 *
 * A layer's files are reached through a scoped, read-only `LayerView`:
 * drivers that must mount (zfs, devicemapper) mount in `view` and unmount in
 * the scope's finaliser, so nothing stays mounted after an error or Ctrl-C.
 *
 * @example
 * ```ts
 * const root = Effect.scoped(Effect.gen(function* () {
 *   const driver = yield* StorageDriver
 *   const view = yield* driver.view(id)
 *   return view.root
 * }))
 * ```
 * @module
 */
import { Context, Effect, Schema, type Scope } from "effect"
import { type GraphId, parseGraphId } from "../Ids.ts"
import type { LayerFiles } from "../tar/RegenerateLayer.ts"

/** The storage drivers of Docker <= 1.9. */
export const DRIVER_NAMES = ["aufs", "overlay", "btrfs", "zfs", "devicemapper", "vfs"] as const
export type DriverName = (typeof DRIVER_NAMES)[number]

/** A layer's files, readable under `root` while the view's scope is open. */
export interface LayerView {
  /** Directory whose contents are the paths tar-split names. */
  readonly root: string
}

/** A driver could not list, find or expose a layer. */
export class DriverError extends Schema.TaggedError<DriverError>()("DriverError", {
  driver: Schema.String,
  layer: Schema.optional(Schema.String),
  reason: Schema.Literals(["NotFound", "Unreadable", "MountFailed", "InvalidOption"]),
  detail: Schema.String,
}) {
  override get message(): string {
    return this.layer === undefined
      ? `${this.driver}: ${this.detail}`
      : `Cannot read layer ${this.layer} from ${this.driver}: ${this.detail}`
  }
}

/** A storage driver plugin. */
export class StorageDriver extends Context.Service<StorageDriver, {
  readonly name: DriverName | string
  /** What a layer's view holds: its own changes (aufs) or its whole root; decides how its tar is regenerated. */
  readonly layerFiles: LayerFiles
  /** Graph IDs that have data in this driver. */
  readonly layers: Effect.Effect<ReadonlyArray<GraphId>, DriverError>
  /** Whether the driver holds data for `id` (Docker's `Exists`). */
  readonly exists: (id: GraphId) => Effect.Effect<boolean, DriverError>
  /** A read-only view of the layer's files, released with the scope. */
  readonly view: (id: GraphId) => Effect.Effect<LayerView, DriverError, Scope.Scope>
  /**
   * For a driver that keeps a container's layer apart from image layers, as
   * overlay's own changes (legacy overlay: `overlay/<id>/upper`, whiteouts as
   * 0/0 devices, opaque directories by xattr): that directory, or `undefined`
   * when the layer has no changes. Absent where `view` covers container layers.
   */
  readonly containerUpper?: ((id: string) => Effect.Effect<string | undefined, DriverError>) | undefined
}>()("cas-migrator/StorageDriver") {}

/**
 * The root of the parent a layer's tar is regenerated against: a full-copy
 * driver's child is the difference from its parent; `undefined` for a base
 * layer or a driver that keeps only the layer's own changes. Fails with why.
 */
export const regenerationParentRoot = (
  driver: StorageDriver["Service"],
  parent: string,
): Effect.Effect<string | undefined, string, Scope.Scope> => {
  if (driver.layerFiles !== "snapshot" || parent === "") return Effect.succeed(undefined)
  const parentId = parseGraphId(parent)
  if (parentId === undefined) return Effect.fail(`parent ${JSON.stringify(parent)} is not a layer ID`)
  return Effect.mapBoth(driver.view(parentId), { onFailure: (error) => error.message, onSuccess: (view) => view.root })
}
