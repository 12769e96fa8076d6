/**
 * An image config built from a legacy v1 image JSON exactly as Docker 1.10's
 * `MakeConfigFromV1Config` built it: its bytes are the image ID.
 *
 * The v1 JSON is kept raw (numbers, nulls, escapes as written; compacted with
 * HTML-safe escaping; keys unescaped, de-duplicated and sorted), minus `id`,
 * `parent`, `Size`, `parent_id`, `layer_id`, `throwaway`, plus `rootfs` and
 * `history`. JSON from Docker older than 1.8.3 first goes through Docker's
 * `V1Image` struct (unknown keys dropped, fields normalised).
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { goQuote } from "../go/GoJson.ts"
import { sortedByUtf8 } from "../Bytes.ts"
import { compactJson, type JsonNode, objectMembers, parseJsonTree } from "../go/GoJsonBytes.ts"
import { formatGoTime, type GoTime } from "../go/GoTime.ts"
import { decodeV1Image, encodeV1Image, V1ImageError } from "../legacy/V1Image.ts"

/** One `history` entry (Docker 1.10's `image.History`). */
export interface History {
  readonly created: GoTime
  readonly author: string
  readonly createdBy: string
  readonly comment: string
  readonly emptyLayer: boolean
}

const utf8 = new TextEncoder()

/** Docker's `pkg/version` comparison: dot-separated integers, anything unparsable counting as 0. */
export const dockerVersionLessThan = (version: string, other: string): boolean => {
  const atoi = (part: string | undefined): bigint => {
    if (part === undefined || !/^[+-]?[0-9]+$/.test(part)) return 0n
    const value = BigInt(part)
    const max = 2n ** 63n - 1n
    return value > max ? max : value < -max - 1n ? -max - 1n : value // strconv.Atoi saturates on overflow
  }
  const a = version.split(".")
  const b = other.split(".")
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [x, y] = [atoi(a[i]), atoi(b[i])]
    if (x !== y) return x < y
  }
  return false
}

/** Docker's `HistoryFromConfig`: the history entry of an image, from its v1 JSON. */
export const historyFromConfig = (imageJson: Uint8Array, emptyLayer = false): History =>
  historyFromTree(parseJsonTree(imageJson), emptyLayer)

/** `historyFromConfig` of v1 JSON already parsed (`parseJsonTree`). */
export const historyFromTree = (tree: JsonNode, emptyLayer = false): History => {
  const image = decodeV1Image(tree)
  return {
    created: image.created,
    author: image.author,
    createdBy: (image.container_config.Cmd ?? []).join(" "),
    comment: image.comment,
    emptyLayer,
  }
}

/**
 * Each entry's JSON, made once: a chain's images share their parents' entries,
 * and an image n deep would otherwise encode n of them again.
 */
const encodedEntries = new WeakMap<History, string>()

/** `json.Marshal` of one `image.History`. */
const encodeHistoryEntry = (h: History): string => {
  const known = encodedEntries.get(h)
  if (known !== undefined) return known
  let out = `{"created":"${formatGoTime(h.created)}"`
  if (h.author !== "") out += `,"author":${goQuote(h.author)}`
  if (h.createdBy !== "") out += `,"created_by":${goQuote(h.createdBy)}`
  if (h.comment !== "") out += `,"comment":${goQuote(h.comment)}`
  if (h.emptyLayer) out += `,"empty_layer":true`
  out += "}"
  encodedEntries.set(h, out)
  return out
}

/** `json.Marshal` of `[]image.History`. */
export const encodeHistory = (history: ReadonlyArray<History>): string => `[${history.map(encodeHistoryEntry).join(",")}]`

/** `json.Marshal` of an `image.RootFS` of layers. */
export const encodeRootFs = (diffIds: ReadonlyArray<string>): string =>
  diffIds.length === 0 ? `{"type":"layers"}` : `{"type":"layers","diff_ids":[${diffIds.map((d) => goQuote(d)).join(",")}]}`

const DROPPED_KEYS = ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"]

/** Docker images older than this went through the `V1Image` struct. */
const NO_FALLBACK_MIN_VERSION = "1.8.3"

/**
 * The config bytes of an image (`MakeConfigFromV1Config`); throws for JSON Go
 * rejected. `tree`: `imageJson` parsed, when the caller has it already.
 */
export const makeImageConfig = (
  imageJson: Uint8Array,
  diffIds: ReadonlyArray<string>,
  history: ReadonlyArray<History>,
  tree: JsonNode = parseJsonTree(imageJson),
): Uint8Array => {
  let dockerVersion = ""
  if (tree.kind === "object") {
    for (const [key, value] of tree.members) {
      if (key.toLowerCase() !== "docker_version") continue
      if (value.kind === "string") dockerVersion = value.value
      else if (value.kind !== "null") throw new V1ImageError(`json: cannot unmarshal ${value.kind} into docker_version of type string`)
    }
  } else if (tree.kind !== "null") {
    throw new V1ImageError(`json: cannot unmarshal ${tree.kind} into an image`)
  }
  const source = dockerVersionLessThan(dockerVersion, NO_FALLBACK_MIN_VERSION)
    ? utf8.encode(encodeV1Image(decodeV1Image(tree)))
    : imageJson
  const members = objectMembers(source)
  for (const key of DROPPED_KEYS) members.delete(key)
  const raw = new Map<string, Uint8Array>()
  for (const [key, value] of members) raw.set(key, compactJson(value))
  raw.set("rootfs", utf8.encode(encodeRootFs(diffIds)))
  raw.set("history", utf8.encode(encodeHistory(history)))
  const keys = sortedByUtf8(raw.keys())
  const parts: Array<Uint8Array> = [utf8.encode("{")]
  keys.forEach((key, i) => {
    parts.push(utf8.encode(`${i > 0 ? "," : ""}${goQuote(key)}:`), raw.get(key)!)
  })
  parts.push(utf8.encode("}"))
  return new Uint8Array(Buffer.concat(parts))
}
