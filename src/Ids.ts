/**
 * Identifiers as distinct types, each made only by a parser that validates it:
 * a function that takes a `ChainID` cannot be handed a `DiffID`.
 *
 * @example
 * ```ts
 * const id = parseGraphId("4d459c9e9b6ddc89797df4e5cc4cd00c2ab36447d436279c32fc458f91da5a63")
 * if (id !== undefined) console.log(id)
 * ```
 * @module
 */

declare const brand: unique symbol
type Brand<T, Name extends string> = T & { readonly [brand]: Name }

/** A legacy graph ID: a layer/image directory name under `graph/`. */
export type GraphId = Brand<string, "GraphId">
/** `sha256:<hex>` of a layer's uncompressed tar stream. */
export type DiffID = Brand<string, "DiffID">
/** `sha256:<hex>` naming a layer with all its ancestors. */
export type ChainID = Brand<string, "ChainID">
/** `sha256:<hex>` of an image config. */
export type ImageID = Brand<string, "ImageID">

const HEX64 = /^[a-f0-9]{64}$/
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/

/** A graph ID as Docker's `ValidateID` accepts it: exactly 64 lower-case hex digits. */
export const parseGraphId = (text: string): GraphId | undefined => (HEX64.test(text) ? (text as GraphId) : undefined)

/** A `sha256:<64 hex>` digest, or `undefined`. */
export const parseDiffId = (text: string): DiffID | undefined =>
  SHA256_DIGEST.test(text) ? (text as DiffID) : undefined

/** The diffID of a layer whose tar stream hashed to `hex`. */
export const diffIdFromHex = (hex: string): DiffID => {
  const id = parseDiffId(`sha256:${hex}`)
  if (id === undefined) throw new TypeError(`not a SHA-256 hex digest: ${hex}`)
  return id
}

/** The diffID of the empty layer (1024 zero bytes). */
export const EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" as DiffID

/** A short form of an ID for messages (first 12 hex digits). */
export const shortId = (id: string): string => id.replace(/^sha256:/, "").slice(0, 12)
