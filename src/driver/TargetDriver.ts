/**
 * A storage driver `migrate` writes the store for when it is not the graph's
 * own (`--target-driver`): it makes each layer's data in its own layout from
 * the layer's tar and names it with the cache ID the store records. The core
 * knows nothing of its layout.
 *
 * @module
 */
import type { Effect } from "effect"
import { Schema } from "effect"
import type { DiffID, GraphId } from "../Ids.ts"
import type { StorageDriver } from "./StorageDriver.ts"

/** A layer (or a container's layer) could not be made in the target driver. */
export class TargetLayerError extends Schema.TaggedError<TargetLayerError>()("TargetLayerError", {
  layer: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot make layer ${this.layer} in the target driver: ${this.detail}`
  }
}

/** An image layer to make: its tar is the graph layer's, which must hash to `diffId`. */
export interface TargetLayer {
  readonly graphId: GraphId
  /** The graph parent's ID, `""` for a base layer (the tar of a regenerated child is made against it). */
  readonly graphParent: string
  /** The target's cache ID of the parent layer. */
  readonly parentCacheId: string | undefined
  readonly diffId: DiffID
}

/** A container's read-write layer (and its `-init` layer) to make on top of its image's top layer. */
export interface TargetMount {
  readonly container: string
  /** The image's top layer in the graph (the legacy layers' parent), and its cache ID in the target. */
  readonly imageGraphId: string
  readonly imageCacheId: string | undefined
  readonly initGraphId: GraphId | undefined
}

/** A directory a layer's tar may be unpacked into while `checksums` hashes it; `done` says what it holds (first call wins). */
export interface AheadSlot {
  readonly dir: string
  /** The layer's diffID once its helper files are written, or `undefined`: nothing usable is there. */
  readonly done: (diffId: DiffID | undefined) => void
}

export interface TargetDriver {
  readonly name: string
  /** The Docker root the target's files go into. */
  readonly root: string
  /** Before anything is written: removes what a killed run left half-made; `inUse` are the IDs the store names. */
  readonly prepare: (inUse: ReadonlySet<string>) => Promise<void>
  /**
   * Optional: starts making the data of these layers (their helper files written) in the background,
   * in parallel; `makeLayer` then takes what is ready. `dropAhead` waits for that work to end and
   * removes what no `makeLayer` took.
   */
  readonly makeAhead?: ((layers: ReadonlyArray<{ readonly graphId: GraphId; readonly diffId: DiffID }>) => Effect.Effect<void, never, StorageDriver>) | undefined
  readonly dropAhead?: (() => Effect.Effect<void>) | undefined
  /** Optional: a directory for layer `id`'s tar while `checksums` hashes it (see `AheadSlot`); `makeAhead` then skips it. */
  readonly aheadSlot?: ((id: GraphId) => AheadSlot | undefined) | undefined
  /** Makes the layer's data; its cache ID. */
  readonly makeLayer: (layer: TargetLayer) => Effect.Effect<string, TargetLayerError, StorageDriver>
  /** Makes a container's layers; their mount ID and init ID. Without it containers get no mount. */
  readonly makeMount?: ((mount: TargetMount) => Effect.Effect<{ readonly mountId: string; readonly initId: string | undefined }, TargetLayerError, StorageDriver>) | undefined
}
