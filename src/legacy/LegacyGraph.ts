/**
 * Reading the legacy graph (`<root>/graph/<id>/...`) as Docker 1.10's
 * migration read it: which directories are layers, and each one's parent.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { sortedByUtf8 } from "../Bytes.ts"
import { errorCode, errorMessage } from "../platform/ErrorCode.ts"
import { type GraphId, parseGraphId } from "../Ids.ts"
import { readSmallFile, readSmallFileIfPresentSync, readSmallFileSync, SMALL_FILE_LIMIT, SmallFileError } from "../platform/RegularFile.ts"
import { decodeLegacyRepositories } from "./References.ts"

/** On-disk names in the legacy graph. */
export const GRAPH_DIR = "graph"
export const IMAGE_JSON = "json"
export const PARENT_FILE = "parent"
export const TAR_DATA = "tar-data.json.gz"
export const MIGRATION_DIFF_ID = ".migration-diffid"
export const MIGRATION_SIZE = ".migration-size"
export const MIGRATION_TAR_DATA = ".migration-tardata"

/** A graph item could not be read. */
export class GraphError extends Schema.TaggedError<GraphError>()("GraphError", {
  layer: Schema.String,
  reason: Schema.Literals(["Unreadable", "BadJson", "BadParent"]),
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot read image ${this.layer}: ${this.detail}`
  }
}

/** The graph directory itself cannot be listed. */
export class GraphRootError extends Schema.TaggedError<GraphRootError>()("GraphRootError", {
  path: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot list ${this.path}: ${this.detail}`
  }
}

/** Paths of one graph item. */
export const graphPaths = (root: string, id: GraphId) => {
  const dir = path.join(root, GRAPH_DIR, id)
  return {
    dir,
    json: path.join(dir, IMAGE_JSON),
    parent: path.join(dir, PARENT_FILE),
    tarData: path.join(dir, TAR_DATA),
    diffId: path.join(dir, MIGRATION_DIFF_ID),
    size: path.join(dir, MIGRATION_SIZE),
    migrationTarData: path.join(dir, MIGRATION_TAR_DATA),
  }
}

/** The entries of `graph/`: the valid IDs in name order (as Go's `ioutil.ReadDir`) and the names ignored. */
export const listGraph = (root: string): Effect.Effect<
  { readonly ids: ReadonlyArray<GraphId>; readonly ignored: ReadonlyArray<string> },
  GraphRootError
> =>
  Effect.tryPromise({
    try: () => fs.readdir(path.join(root, GRAPH_DIR)),
    catch: (error) => new GraphRootError({ path: path.join(root, GRAPH_DIR), detail: errorText(error) }),
  }).pipe(Effect.map((names) => {
    const sorted = sortedByUtf8(names)
    return {
      ids: sorted.flatMap((name) => parseGraphId(name) ?? []),
      ignored: sorted.filter((name) => parseGraphId(name) === undefined),
    }
  }))

/**
 * The parent of an image as Docker's `getParent` found it: `parent` (<= 1.8),
 * else the hex of `parent_id` (1.9), and a non-empty `graph/<id>/parent` file
 * wins over both. `""` means no parent. JSON keys match case-insensitively,
 * as Go's `json.Unmarshal` matches struct fields.
 */
export const readParent = (root: string, id: GraphId): Effect.Effect<string, GraphError> =>
  Effect.try({
    try: () => readParentSync(root, id),
    catch: (error) =>
      error instanceof GraphError ? error : new GraphError({ layer: id, reason: "Unreadable", detail: errorMessage(error) }),
  })

/** `readParent`, synchronously (small reads are several times faster so); throws `GraphError`. */
export const readParentSync = (root: string, id: GraphId, json?: Uint8Array): string => {
  const paths = graphPaths(root, id)
  let text: string
  try {
    // `json`: the layer's `json`, when the caller has read it already (it is read once per image).
    text = new TextDecoder().decode(json ?? readSmallFileSync(paths.json, SMALL_FILE_LIMIT.config))
  } catch (error) {
    throw new GraphError({ layer: id, reason: "Unreadable", detail: `${paths.json}: ${errorText(error)}` })
  }
  let parent: string
  try {
    parent = parentFromJson(text)
  } catch (error) {
    throw new GraphError({
      layer: id,
      reason: error instanceof ParentIdError ? "BadParent" : "BadJson",
      detail: `${paths.json}: ${errorText(error)}`,
    })
  }
  // Docker ignored an unreadable `parent` file; one that is not a small regular file fails the image.
  let override = ""
  try {
    override = new TextDecoder().decode(readSmallFileIfPresentSync(paths.parent, SMALL_FILE_LIMIT.value) ?? new Uint8Array())
  } catch (error) {
    if (error instanceof SmallFileError) throw new GraphError({ layer: id, reason: "Unreadable", detail: errorMessage(error) })
  }
  return override.length > 0 ? override : parent
}

/** The parent of each image in `ids` (see `readParent`), and why for those whose parent cannot be read. */
export const readParents = (root: string, ids: ReadonlyArray<GraphId>) =>
  Effect.gen(function* () {
    const parents = new Map<GraphId, string>()
    const errors = new Map<GraphId, string>()
    for (const id of ids) {
      const parent = yield* Effect.result(readParent(root, id))
      if (parent._tag === "Success") parents.set(id, parent.success)
      else errors.set(id, parent.failure.message)
    }
    return { parents, errors }
  })

/** `repositories-<driver>` decoded as Docker decoded it; `undefined` when there is none. Errors name the file. */
export const readLegacyRepositories = async (root: string, driverName: string) => {
  const file = path.join(root, `repositories-${driverName}`)
  let bytes: Uint8Array
  try {
    bytes = await readSmallFile(file, SMALL_FILE_LIMIT.repositories)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined
    throw new Error(`${file}: ${errorText(error)}`)
  }
  try {
    return decodeLegacyRepositories(bytes)
  } catch (error) {
    throw new Error(`${file}: ${errorMessage(error)}`)
  }
}

/** `parent_id` without the `:` that Docker's `digest.Hex()` needs (Docker panicked there). */
export class ParentIdError extends Error {
  override readonly name = "ParentIdError"
}

/** The parent named in an image's v1 JSON (`""` for none), with Go's decoding rules. */
export const parentFromJson = (text: string): string => {
  const value: unknown = JSON.parse(text)
  if (value === null) return ""
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`json: cannot unmarshal ${Array.isArray(value) ? "array" : typeof value} into an image`)
  }
  let parent = ""
  let parentId = ""
  for (const [key, field] of Object.entries(value)) {
    const folded = key.toLowerCase()
    if (folded !== "parent" && folded !== "parent_id") continue
    if (field === null) continue
    if (typeof field !== "string") throw new Error(`json: cannot unmarshal ${typeof field} into field ${key} of type string`)
    if (folded === "parent") parent = field
    else parentId = field
  }
  if (parent === "" && parentId !== "") {
    const colon = parentId.indexOf(":")
    if (colon < 0) throw new ParentIdError(`parent_id ${JSON.stringify(parentId)} is not a digest (no algorithm prefix)`)
    return parentId.slice(colon + 1)
  }
  return parent
}

/** Go sorts names by bytes; JavaScript's default sort compares UTF-16 units. */

/** A short reason for a failed system call or parse. */
export const errorText = (error: unknown): string => {
  if (error instanceof SmallFileError) return error.reason
  const code = errorCode(error)
  if (code !== undefined) return code === "ENOENT" ? "no such file or directory" : code
  return errorMessage(error)
}
