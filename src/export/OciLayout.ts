/**
 * An OCI image layout 1.1 written as layers are made: each layer's tar
 * written by a layer worker into a temporary blob, then named by its digest
 * (uncompressed: the diffID) or gzipped into its blob; a config and a
 * manifest blob per image; `index.json` (a `ref.name` per tag) and
 * `oci-layout` at the end, when every blob no manifest names (a failed
 * image's) is removed.
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import { createGzip } from "node:zlib"
import { goQuote } from "../go/GoJson.ts"
import type { GraphId } from "../Ids.ts"
import type { ImageWriter, ReadyImage } from "./ReadyImage.ts"

const MEDIA = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const

const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex")

interface Blob {
  readonly digest: string
  readonly size: number
}

export class OciLayoutWriter implements ImageWriter {
  readonly parallel = true
  private readonly blobs: string
  private readonly layerBlobs = new Map<GraphId, Blob>()
  private imageLayers: Array<GraphId> = []
  /** Digests of the blobs the kept images name. */
  private readonly named = new Set<string>()
  private readonly descriptors: Array<string> = []

  constructor(private readonly layout: string, private readonly gzip: boolean) {
    this.blobs = path.join(layout, "blobs", "sha256")
    fs.mkdirSync(this.blobs, { recursive: true })
  }

  beginImage(): void {
    this.imageLayers = []
  }

  has(id: GraphId): boolean {
    return this.layerBlobs.has(id)
  }

  private temporary(id: GraphId) {
    return path.join(this.layout, "blobs", `.tmp-${id}`)
  }

  beginLayer(id: GraphId) {
    fs.writeFileSync(this.temporary(id), new Uint8Array(0), { mode: 0o644 })
    return { file: this.temporary(id), position: 0 }
  }

  async endLayer(id: GraphId, diffId: string, tarBytes: number): Promise<void> {
    const temporary = this.temporary(id)
    // A tar-split attempt that failed may have left bytes past the regenerated tar's end.
    fs.truncateSync(temporary, tarBytes)
    let blob: Blob
    if (!this.gzip) {
      fs.renameSync(temporary, path.join(this.blobs, diffId.slice("sha256:".length)))
      blob = { digest: diffId, size: tarBytes }
    } else {
      const gzipped = `${temporary}.gz`
      const hash = createHash("sha256")
      let size = 0
      const gzip = createGzip()
      gzip.on("data", (chunk: Uint8Array) => {
        hash.update(chunk)
        size += chunk.length
      })
      await pipeline(fs.createReadStream(temporary), gzip, fs.createWriteStream(gzipped))
      const hex = hash.digest("hex")
      fs.renameSync(gzipped, path.join(this.blobs, hex))
      fs.rmSync(temporary)
      blob = { digest: `sha256:${hex}`, size }
    }
    this.layerBlobs.set(id, blob)
    this.imageLayers.push(id)
  }

  /** A blob file named by its digest (written once). */
  private putBlob(bytes: Uint8Array | string): Blob {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes
    const hex = sha256Hex(data)
    const file = path.join(this.blobs, hex)
    if (!fs.existsSync(file)) fs.writeFileSync(file, data, { mode: 0o644 })
    return { digest: `sha256:${hex}`, size: data.length }
  }

  addImage(image: ReadyImage): void {
    const config = this.putBlob(image.config)
    const layers = image.chain.map((id) => this.layerBlobs.get(id)!)
    const manifest = this.putBlob(
      `{"schemaVersion":2,"mediaType":"${MEDIA.manifest}","config":{"mediaType":"${MEDIA.config}","digest":"${config.digest}","size":${config.size}},` +
        `"layers":[${layers.map((blob) => `{"mediaType":"${this.gzip ? MEDIA.layerGzip : MEDIA.layer}","digest":"${blob.digest}","size":${blob.size}}`).join(",")}]}`,
    )
    for (const blob of [config, manifest, ...layers]) this.named.add(blob.digest.slice("sha256:".length))
    const descriptor = (annotations: string) => `{"mediaType":"${MEDIA.manifest}","digest":"${manifest.digest}","size":${manifest.size}${annotations}}`
    const tags = image.references.filter((r) => r.kind === "tag")
    if (tags.length === 0) this.descriptors.push(descriptor(""))
    for (const tag of tags) {
      const full = fullyQualified(tag.repository) + tag.key.slice(tag.repository.length)
      this.descriptors.push(descriptor(`,"annotations":{"io.containerd.image.name":${goQuote(full)},"org.opencontainers.image.ref.name":${goQuote(tag.key)}}`))
    }
  }

  dropImage(): void {
    // Its blobs go at the end, unless a kept image names them (byte-identical layers share a blob).
    for (const id of this.imageLayers) this.layerBlobs.delete(id)
    this.imageLayers = []
  }

  finish(): void {
    for (const name of fs.readdirSync(this.blobs)) if (!this.named.has(name)) fs.rmSync(path.join(this.blobs, name))
    for (const name of fs.readdirSync(path.join(this.layout, "blobs"))) if (name.startsWith(".tmp-")) fs.rmSync(path.join(this.layout, "blobs", name))
    fs.writeFileSync(path.join(this.layout, "oci-layout"), `{"imageLayoutVersion":"1.0.0"}`)
    fs.writeFileSync(path.join(this.layout, "index.json"), `{"schemaVersion":2,"mediaType":"${MEDIA.index}","manifests":[${this.descriptors.join(",")}]}`)
  }
}

/** `debian` → `docker.io/library/debian`, `user/x` → `docker.io/user/x`; names with a registry stay. */
const fullyQualified = (repository: string): string => {
  const first = repository.split("/")[0]!
  if (repository.includes("/") && (/[.:]/.test(first) || first === "localhost")) return repository
  return `docker.io/${repository.includes("/") ? "" : "library/"}${repository}`
}
