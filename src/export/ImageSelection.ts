/**
 * Which legacy images `export` writes, from what the user typed: a tag
 * (`debian:jessie`, `docker.io/library/debian:jessie`, `localhost:5000/x:1`,
 * normalised as `migrate` normalises tags, `latest` when none), a digest
 * reference (`name@sha256:...`) from `repositories-<driver>`, or a v1 image ID
 * or a unique prefix of at least 12 characters. None: every tagged image;
 * `all`: also the untagged images that are no other image's parent.
 *
 * @module
 */
import * as path from "node:path"
import type { GraphId } from "../Ids.ts"
import { readLegacyRepositories } from "../legacy/LegacyGraph.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { legacyReference, normalizeName, parseDigest } from "../legacy/References.ts"

/** A legacy tag or digest, as `migrate` would store it. */
export interface LegacyReference {
  /** The name as written in `repositories-<driver>`. */
  readonly name: string
  /** The tag or digest as written there. */
  readonly tag: string
  /** The normalised repository (`debian`, `localhost:5000/x`). */
  readonly repository: string
  /** `repository:tag` or `repository@digest`: the key `repositories.json` files it under. */
  readonly key: string
  readonly kind: "tag" | "digest"
  readonly v1Id: string
}

/** The references of `repositories-<driver>` (none when it is missing); invalid names are left out with a warning. */
export const readLegacyReferences = async (
  root: string,
  driverName: string,
  warn: (message: string) => void,
): Promise<Array<LegacyReference>> => {
  const file = path.join(root, `repositories-${driverName}`)
  const decoded = (await readLegacyRepositories(root, driverName)) ?? []
  const out: Array<LegacyReference> = []
  for (const { name, tags } of decoded) {
    for (const [tag, v1Id] of tags) {
      try {
        const reference = legacyReference(name, tag)
        out.push({ name, tag, repository: reference.repository, key: reference.key, kind: reference.kind, v1Id })
      } catch (error) {
        warn(`${file}: ${name}:${tag}: ${errorMessage(error)}`)
      }
    }
  }
  return out
}

/** One image to export and the references that name it. */
export interface SelectedImage {
  readonly v1Id: GraphId
  readonly references: ReadonlyArray<LegacyReference>
}

/** What the user asked for that names no image, with why. */
export interface Unresolved {
  readonly argument: string
  readonly reason: string
}

/** The `repositories.json` key a typed reference means, or an error saying why it is not one. */
const keyOf = (argument: string): string => {
  const at = argument.indexOf("@")
  if (at >= 0) {
    const digest = parseDigest(argument.slice(at + 1))
    if (digest === undefined) throw new Error("invalid digest")
    return `${normalizeName(argument.slice(0, at))}@${digest}`
  }
  const colon = argument.lastIndexOf(":")
  const tagged = colon > argument.lastIndexOf("/")
  const name = tagged ? argument.slice(0, colon) : argument
  const tag = tagged ? argument.slice(colon + 1) : "latest"
  return legacyReference(name, tag).key
}

/**
 * The images `requested` names, each once, in the order asked (or, for none,
 * in reference order, then untagged leaves by ID with `all`).
 */
export const selectImages = (
  requested: ReadonlyArray<string>,
  references: ReadonlyArray<LegacyReference>,
  graphIds: ReadonlyArray<GraphId>,
  parents: ReadonlyMap<GraphId, string>,
  all: boolean,
): { readonly images: Array<SelectedImage>; readonly unresolved: Array<Unresolved> } => {
  const known = new Set<string>(graphIds)
  const byId = new Map<GraphId, Array<LegacyReference>>()
  const order: Array<GraphId> = []
  const add = (id: GraphId, reference?: LegacyReference) => {
    let list = byId.get(id)
    if (list === undefined) {
      list = []
      byId.set(id, list)
      order.push(id)
    }
    // Two legacy names can normalise to one reference (`busybox`, `library/busybox`): listed once.
    if (reference !== undefined && !list.some((r) => r.key === reference.key)) list.push(reference)
  }
  const unresolved: Array<Unresolved> = []
  const usable = references.filter((reference) => known.has(reference.v1Id))
  if (requested.length === 0) {
    for (const reference of usable) add(reference.v1Id as GraphId, reference)
    if (all) {
      const isParent = new Set(parents.values())
      for (const id of graphIds) if (!isParent.has(id) && !byId.has(id)) add(id)
    }
    return { images: order.map((v1Id) => ({ v1Id, references: byId.get(v1Id)! })), unresolved }
  }
  for (const argument of requested) {
    if (/^[0-9a-f]{12,64}$/.test(argument)) {
      const matches = graphIds.filter((id) => id.startsWith(argument))
      if (matches.length === 1) {
        add(matches[0]!)
        continue
      }
      if (matches.length > 1) {
        unresolved.push({ argument, reason: `ambiguous: ${matches.length} images start with it` })
        continue
      }
    }
    let key: string
    try {
      key = keyOf(argument)
    } catch (error) {
      unresolved.push({ argument, reason: `not a reference: ${errorMessage(error)}` })
      continue
    }
    const reference = references.find((r) => r.key === key)
    if (reference === undefined) unresolved.push({ argument, reason: `no such image in the graph's repositories (${key})` })
    else if (!known.has(reference.v1Id)) unresolved.push({ argument, reason: `${key} names ${reference.v1Id}, which is not in graph/` })
    else add(reference.v1Id as GraphId, reference)
  }
  return { images: order.map((v1Id) => ({ v1Id, references: byId.get(v1Id)! })), unresolved }
}
