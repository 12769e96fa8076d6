/**
 * Docker 1.10's `image.V1Image` and engine-api's `container.Config`, decoded
 * and encoded with Go 1.5's `encoding/json` rules: keys matched exactly or
 * case-insensitively, unknown keys dropped, a wrongly typed value an error,
 * fields written in struct order with `omitempty`, maps with sorted keys,
 * HTML-safe strings. Images from Docker older than 1.8.3 go through this
 * round trip before their config is built (`MakeConfigFromV1Config`).
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { goQuote } from "../go/GoJson.ts"
import type { JsonNode } from "../go/GoJsonBytes.ts"
import { formatGoTime, type GoTime, unmarshalGoTime, ZERO_TIME } from "../go/GoTime.ts"

/** A value Go's decoder would not put in the field. */
export class V1ImageError extends Error {
  override readonly name = "V1ImageError"
}

/** engine-api's `container.Config` (Docker 1.10). */
export interface ContainerConfig {
  Hostname: string
  Domainname: string
  User: string
  AttachStdin: boolean
  AttachStdout: boolean
  AttachStderr: boolean
  ExposedPorts: Map<string, true> | null
  PublishService: string
  Tty: boolean
  OpenStdin: boolean
  StdinOnce: boolean
  Env: Array<string> | null
  Cmd: Array<string> | null
  ArgsEscaped: boolean
  Image: string
  Volumes: Map<string, true> | null
  WorkingDir: string
  Entrypoint: Array<string> | null
  NetworkDisabled: boolean
  MacAddress: string
  OnBuild: Array<string> | null
  Labels: Map<string, string> | null
  StopSignal: string
}

/** Docker 1.10's `image.V1Image`. */
export interface V1Image {
  id: string
  parent: string
  comment: string
  created: GoTime
  container: string
  container_config: ContainerConfig
  docker_version: string
  author: string
  config: ContainerConfig | null
  architecture: string
  os: string
  Size: number
}

const emptyContainerConfig = (): ContainerConfig => ({
  Hostname: "",
  Domainname: "",
  User: "",
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  ExposedPorts: null,
  PublishService: "",
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  ArgsEscaped: false,
  Image: "",
  Volumes: null,
  WorkingDir: "",
  Entrypoint: null,
  NetworkDisabled: false,
  MacAddress: "",
  OnBuild: null,
  Labels: null,
  StopSignal: "",
})

const typeError = (node: JsonNode, goType: string, field: string) =>
  new V1ImageError(`json: cannot unmarshal ${node.kind === "bool" ? "bool" : node.kind} into Go value of type ${goType} (field ${field})`)

const asString = (node: JsonNode, field: string, current: string): string =>
  node.kind === "null" ? current : node.kind === "string" ? node.value : (() => {
    throw typeError(node, "string", field)
  })()

const asBool = (node: JsonNode, field: string, current: boolean): boolean =>
  node.kind === "null" ? current : node.kind === "bool" ? node.value : (() => {
    throw typeError(node, "bool", field)
  })()

const asInt64 = (node: JsonNode, field: string, current: number): number => {
  if (node.kind === "null") return current
  if (node.kind !== "number" || !/^-?[0-9]+$/.test(node.raw)) throw typeError(node, "int64", field)
  const value = BigInt(node.raw)
  if (value > 2n ** 63n - 1n || value < -(2n ** 63n)) throw typeError(node, "int64", field)
  return Number(value)
}

const asStrings = (node: JsonNode, field: string): Array<string> | null => {
  if (node.kind === "null") return null
  if (node.kind !== "array") throw typeError(node, "[]string", field)
  return node.items.map((item) => asString(item, field, ""))
}

/** strslice.StrSlice: an array of strings, or one string. */
const asStrSlice = (node: JsonNode, field: string): Array<string> | null => {
  if (node.kind === "null") return null
  if (node.kind === "string") return [node.value]
  if (node.kind === "array") return asStrings(node, field)
  throw typeError(node, "string", field)
}

const asSet = (node: JsonNode, field: string): Map<string, true> | null => {
  if (node.kind === "null") return null
  if (node.kind !== "object") throw typeError(node, "map[string]struct {}", field)
  const out = new Map<string, true>()
  for (const [key, value] of node.members) {
    if (value.kind !== "object" && value.kind !== "null") throw typeError(value, "struct {}", field)
    out.set(key, true)
  }
  return out
}

const asStringMap = (node: JsonNode, field: string): Map<string, string> | null => {
  if (node.kind === "null") return null
  if (node.kind !== "object") throw typeError(node, "map[string]string", field)
  const out = new Map<string, string>()
  for (const [key, value] of node.members) out.set(key, asString(value, field, ""))
  return out
}

/** Go 1.5's key matching: an exact field name wins, else the first field equal under case folding. */
const fieldFor = (names: ReadonlyArray<string>, key: string): string | undefined => {
  if (names.includes(key)) return key
  const folded = key.toLowerCase().replace(/\u017f/g, "s").replace(/\u212a/g, "k")
  return names.find((name) => name.toLowerCase() === folded)
}

const CONTAINER_FIELDS = Object.keys(emptyContainerConfig()) as ReadonlyArray<keyof ContainerConfig>

const decodeContainerConfig = (node: JsonNode, into: ContainerConfig, field: string): ContainerConfig => {
  if (node.kind === "null") return into
  if (node.kind !== "object") throw typeError(node, "container.Config", field)
  for (const [key, value] of node.members) {
    const name = fieldFor(CONTAINER_FIELDS, key) as keyof ContainerConfig | undefined
    if (name === undefined) continue
    switch (name) {
      case "ExposedPorts":
      case "Volumes":
        into[name] = asSet(value, name)
        break
      case "Env":
      case "OnBuild":
        into[name] = asStrings(value, name)
        break
      case "Cmd":
      case "Entrypoint":
        into[name] = asStrSlice(value, name)
        break
      case "Labels":
        into.Labels = asStringMap(value, name)
        break
      case "AttachStdin":
      case "AttachStdout":
      case "AttachStderr":
      case "Tty":
      case "OpenStdin":
      case "StdinOnce":
      case "ArgsEscaped":
      case "NetworkDisabled":
        into[name] = asBool(value, name, into[name])
        break
      default:
        into[name] = asString(value, name, into[name])
    }
  }
  return into
}

const V1_FIELDS = [
  "id",
  "parent",
  "comment",
  "created",
  "container",
  "container_config",
  "docker_version",
  "author",
  "config",
  "architecture",
  "os",
  "Size",
] as const

/** `json.Unmarshal(imageJSON, &v1Image)`. */
export const decodeV1Image = (node: JsonNode): V1Image => {
  const image: V1Image = {
    id: "",
    parent: "",
    comment: "",
    created: ZERO_TIME,
    container: "",
    container_config: emptyContainerConfig(),
    docker_version: "",
    author: "",
    config: null,
    architecture: "",
    os: "",
    Size: 0,
  }
  if (node.kind === "null") return image
  if (node.kind !== "object") throw typeError(node, "image.V1Image", "")
  for (const [key, value] of node.members) {
    const name = fieldFor(V1_FIELDS, key) as (typeof V1_FIELDS)[number] | undefined
    if (name === undefined) continue
    switch (name) {
      case "created":
        image.created = unmarshalGoTime(
          value.kind === "string" ? JSON.stringify(value.value) : value.kind === "number" ? value.raw : value.kind,
          value.kind === "string" ? value.value : undefined,
        )
        break
      case "container_config":
        image.container_config = decodeContainerConfig(value, image.container_config, name)
        break
      case "config":
        image.config = value.kind === "null" ? null : decodeContainerConfig(value, image.config ?? emptyContainerConfig(), name)
        break
      case "Size":
        image.Size = asInt64(value, name, image.Size)
        break
      default:
        image[name] = asString(value, name, image[name])
    }
  }
  return image
}

const quoteAll = (items: ReadonlyArray<string> | null) =>
  items === null ? "null" : `[${items.map((item) => goQuote(item)).join(",")}]`

/** Go sorts map keys by their UTF-8 bytes. */
const sortedKeys = <V>(map: ReadonlyMap<string, V>) => {
  const utf8 = new TextEncoder()
  return [...map.keys()].sort((a, b) => Buffer.compare(Buffer.from(utf8.encode(a)), Buffer.from(utf8.encode(b))))
}

const setJson = (set: ReadonlyMap<string, true> | null) =>
  set === null ? "null" : `{${sortedKeys(set).map((key) => `${goQuote(key)}:{}`).join(",")}}`

/** `json.Marshal` of a `container.Config`. */
export const encodeContainerConfig = (c: ContainerConfig): string => {
  const parts: Array<string> = [
    `"Hostname":${goQuote(c.Hostname)}`,
    `"Domainname":${goQuote(c.Domainname)}`,
    `"User":${goQuote(c.User)}`,
    `"AttachStdin":${c.AttachStdin}`,
    `"AttachStdout":${c.AttachStdout}`,
    `"AttachStderr":${c.AttachStderr}`,
  ]
  if (c.ExposedPorts !== null && c.ExposedPorts.size > 0) parts.push(`"ExposedPorts":${setJson(c.ExposedPorts)}`)
  if (c.PublishService !== "") parts.push(`"PublishService":${goQuote(c.PublishService)}`)
  parts.push(
    `"Tty":${c.Tty}`,
    `"OpenStdin":${c.OpenStdin}`,
    `"StdinOnce":${c.StdinOnce}`,
    `"Env":${quoteAll(c.Env)}`,
    `"Cmd":${quoteAll(c.Cmd)}`,
  )
  if (c.ArgsEscaped) parts.push(`"ArgsEscaped":true`)
  parts.push(`"Image":${goQuote(c.Image)}`, `"Volumes":${setJson(c.Volumes)}`, `"WorkingDir":${goQuote(c.WorkingDir)}`)
  parts.push(`"Entrypoint":${quoteAll(c.Entrypoint)}`)
  if (c.NetworkDisabled) parts.push(`"NetworkDisabled":true`)
  if (c.MacAddress !== "") parts.push(`"MacAddress":${goQuote(c.MacAddress)}`)
  parts.push(`"OnBuild":${quoteAll(c.OnBuild)}`)
  const labels = c.Labels
  parts.push(`"Labels":${labels === null ? "null" : `{${sortedKeys(labels).map((k) => `${goQuote(k)}:${goQuote(labels.get(k)!)}`).join(",")}}`}`)
  if (c.StopSignal !== "") parts.push(`"StopSignal":${goQuote(c.StopSignal)}`)
  return `{${parts.join(",")}}`
}

/** `json.Marshal` of a `V1Image`. */
export const encodeV1Image = (image: V1Image): string => {
  const parts: Array<string> = []
  const optional = (name: string, value: string) => {
    if (value !== "") parts.push(`${goQuote(name)}:${goQuote(value)}`)
  }
  optional("id", image.id)
  optional("parent", image.parent)
  optional("comment", image.comment)
  parts.push(`"created":"${formatGoTime(image.created)}"`)
  optional("container", image.container)
  parts.push(`"container_config":${encodeContainerConfig(image.container_config)}`)
  optional("docker_version", image.docker_version)
  optional("author", image.author)
  if (image.config !== null) parts.push(`"config":${encodeContainerConfig(image.config)}`)
  optional("architecture", image.architecture)
  optional("os", image.os)
  if (image.Size !== 0) parts.push(`"Size":${image.Size}`)
  return `{${parts.join(",")}}`
}
