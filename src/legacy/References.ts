/**
 * Docker 1.10's image references, as `migrateRefs` turned legacy tags into
 * them: names normalised (`docker.io/library/x` and `library/x` become `x`,
 * registries with ports kept), validated with distribution's grammar, 64-hex
 * names refused; a tag that parses as a digest makes a digest reference.
 *
 * @module
 */

import { Buffer } from "node:buffer"
import { goQuote } from "../go/GoJson.ts"
import { type JsonNode, parseJsonTree } from "../go/GoJsonBytes.ts"

const NAME_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
const HOSTNAME_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
const HOSTNAME = `${HOSTNAME_COMPONENT}(?:\\.${HOSTNAME_COMPONENT})*(?::[0-9]+)?`
const ANCHORED_NAME = new RegExp(`^(?:${HOSTNAME}/)?${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`)
const ANCHORED_TAG = /^[\w][\w.-]{0,127}$/
const ANCHORED_DIGEST_SYNTAX = /^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/
const REFERENCE_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}$/
const NAME_TOTAL_LENGTH_MAX = 255
const HEX64 = /^[a-f0-9]{64}$/

const DEFAULT_HOSTNAME = "docker.io"
const LEGACY_DEFAULT_HOSTNAME = "index.docker.io"
const DEFAULT_REPO_PREFIX = "library/"

/** A name, tag or digest Docker refused; the message is Docker's reason. */
export class ReferenceError extends Error {
  override readonly name = "ReferenceError"
}

const splitHostname = (name: string): [string, string] => {
  const i = name.indexOf("/")
  let [hostname, remote] = i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== "localhost")
    ? [DEFAULT_HOSTNAME, name]
    : [name.slice(0, i), name.slice(i + 1)]
  if (hostname === LEGACY_DEFAULT_HOSTNAME) hostname = DEFAULT_HOSTNAME
  if (hostname === DEFAULT_HOSTNAME && !remote.includes("/")) remote = DEFAULT_REPO_PREFIX + remote
  return [hostname, remote]
}

/** `reference.WithName`: the repository name as Docker 1.10 stores it. */
export const normalizeName = (name: string): string => {
  const [host, remote] = splitHostname(name)
  if (remote.toLowerCase() !== remote) {
    throw new ReferenceError("invalid reference format: repository name must be lowercase")
  }
  const normalized = host === DEFAULT_HOSTNAME
    ? (remote.startsWith(DEFAULT_REPO_PREFIX) ? remote.slice(DEFAULT_REPO_PREFIX.length) : remote)
    : name
  if (HEX64.test(normalized)) {
    throw new ReferenceError(`Invalid repository name (${normalized}), cannot specify 64-byte hexadecimal strings`)
  }
  if (normalized.length > NAME_TOTAL_LENGTH_MAX) {
    throw new ReferenceError(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`)
  }
  if (!ANCHORED_NAME.test(normalized)) throw new ReferenceError("invalid reference format")
  return normalized
}

/** `digest.ParseDigest`: a supported algorithm and a hex part of its exact length, or `undefined`. */
export const parseDigest = (text: string): string | undefined => {
  if (!ANCHORED_DIGEST_SYNTAX.test(text)) return undefined
  const colon = text.indexOf(":")
  const lengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 }
  const wanted = lengths[text.slice(0, colon)]
  return wanted !== undefined && text.length - colon - 1 === wanted ? text : undefined
}

/** One reference to store: its repository and the key `repositories.json` files it under. */
export interface Reference {
  readonly repository: string
  readonly key: string
  readonly kind: "tag" | "digest"
}

/** The reference a legacy `name` + `tag-or-digest` pair becomes, or a `ReferenceError`. */
export const legacyReference = (name: string, tag: string): Reference => {
  const repository = normalizeName(name)
  if (repository === "sha256") throw new ReferenceError("refusing to create an ambiguous tag using digest algorithm as name")
  const digest = parseDigest(tag)
  if (digest !== undefined) {
    if (!REFERENCE_DIGEST.test(digest)) throw new ReferenceError("invalid digest format")
    return { repository, key: `${repository}@${digest}`, kind: "digest" }
  }
  if (!ANCHORED_TAG.test(tag)) throw new ReferenceError("invalid tag format")
  return { repository, key: `${repository}:${tag}`, kind: "tag" }
}

/** `repositories.json`: `{"Repositories":{name:{reference:imageID}}}`, as Go marshals it (keys sorted). */
export type Repositories = Map<string, Map<string, string>>

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))

export const encodeRepositories = (repositories: Repositories): string =>
  `{"Repositories":{${
    [...repositories.keys()].sort(byBytes).map((name) => {
      const refs = repositories.get(name)!
      return `${goQuote(name)}:{${[...refs.keys()].sort(byBytes).map((key) => `${goQuote(key)}:${goQuote(refs.get(key)!)}`).join(",")}}`
    }).join(",")
  }}}`

/** Reads `repositories.json` as written by `encodeRepositories` (or by Docker). */
export const decodeRepositories = (text: string): Repositories => {
  const parsed = JSON.parse(text) as { Repositories?: Record<string, Record<string, string> | null> | null }
  const out: Repositories = new Map()
  for (const [name, refs] of Object.entries(parsed.Repositories ?? {})) out.set(name, new Map(Object.entries(refs ?? {})))
  return out
}

/** `repositories-<driver>` that Docker's `json.Unmarshal` rejected: Docker's migration stopped there. */
export class LegacyRepositoriesError extends Error {
  override readonly name = "LegacyRepositoriesError"
}

/**
 * `repositories-<driver>` decoded as Docker 1.10's `migrateRefs` decoded it,
 * into `struct { Repositories map[string]map[string]string }`: the field
 * matched case-insensitively (the last match wins), `null` leaves a value
 * empty, and any other type where an object or a string belongs is an error
 * (Go reports it after decoding the rest; Docker then stopped). Pairs in file
 * order, a duplicate name or tag keeping its first place and its last value
 * (Go's map order was random: only conflicting tags can tell, and they are rare).
 */
export const decodeLegacyRepositories = (bytes: Uint8Array): Array<{ readonly name: string; readonly tags: Map<string, string> }> => {
  let top: JsonNode
  try {
    top = parseJsonTree(bytes)
  } catch (error) {
    throw new LegacyRepositoriesError(error instanceof Error ? error.message : String(error))
  }
  const typeError = (node: JsonNode, goType: string, where: string) =>
    new LegacyRepositoriesError(`json: cannot unmarshal ${goKind(node)} into Go value of type ${goType}${where}`)
  if (top.kind === "null") return []
  if (top.kind !== "object") throw typeError(top, "struct { Repositories map[string]map[string]string }", "")
  let repositories: JsonNode = { kind: "null" }
  for (const [key, value] of top.members) if (key.toLowerCase() === "repositories") repositories = value
  if (repositories.kind === "null") return []
  if (repositories.kind !== "object") throw typeError(repositories, "map[string]map[string]string", " (Repositories)")
  const out = new Map<string, Map<string, string>>()
  for (const [name, tags] of repositories.members) {
    const map = new Map<string, string>() // a duplicate name replaces the earlier map whole, as Go decodes it
    out.set(name, map)
    if (tags.kind === "null") continue
    if (tags.kind !== "object") throw typeError(tags, "map[string]string", ` (Repositories[${JSON.stringify(name)}])`)
    for (const [tag, id] of tags.members) {
      if (id.kind === "null") map.set(tag, "")
      else if (id.kind === "string") map.set(tag, id.value)
      else throw typeError(id, "string", ` (Repositories[${JSON.stringify(name)}][${JSON.stringify(tag)}])`)
    }
  }
  return [...out].map(([name, tags]) => ({ name, tags }))
}

const goKind = (node: JsonNode): string => node.kind === "bool" ? "bool" : node.kind
