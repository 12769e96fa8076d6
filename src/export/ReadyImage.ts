/**
 * An image whose layers are written and whose config is made: what the
 * output writers record in their manifests.
 *
 * @module
 */
import type { GraphId } from "../Ids.ts"
import type { LegacyReference } from "./ImageSelection.ts"

export interface ReadyImage {
  readonly v1Id: GraphId
  readonly references: ReadonlyArray<LegacyReference>
  /** Base layer first. */
  readonly chain: ReadonlyArray<GraphId>
  /** Byte for byte the config `migrate` writes. */
  readonly config: Uint8Array
  readonly imageId: string
}

/** Where an output format puts layers as they are made, and the images whose layers are all there. */
export interface ImageWriter {
  /** Whether layers may be written at once (each to a file of its own). */
  readonly parallel: boolean
  /** Starts an image: what is written from now on until `addImage` goes again with `dropImage`. */
  beginImage(): void
  /** Whether layer `id` is in the output (written for an image that was not dropped). */
  has(id: GraphId): boolean
  /** Where layer `id`'s tar goes; `endLayer` once it is written and hashes right. */
  beginLayer(id: GraphId): { readonly file: string; readonly position: number }
  endLayer(id: GraphId, diffId: string, tarBytes: number): Promise<void>
  /** The image is complete: its config and manifest entry. */
  addImage(image: ReadyImage): void
  /** The image failed: nothing written since `beginImage` stays. */
  dropImage(): void
  /** Writes the indexes and closes. */
  finish(): void
}
