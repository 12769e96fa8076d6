/**
 * A docker-archive written as layers are made: `<v1 id>/{VERSION,json,layer.tar}`
 * per layer (each layer's bytes written by a layer worker straight at their
 * place), `<image ID hex>.json` per image, then `manifest.json` (Docker
 * 1.10+) and `repositories` (Docker <= 1.9). A failed image's members are cut
 * off again.
 *
 * @module
 */
import * as fs from "node:fs"
import { goQuote } from "../go/GoJson.ts"
import type { GraphId } from "../Ids.ts"
import { graphPaths } from "../legacy/LegacyGraph.ts"
import { readSmallFileSync, SMALL_FILE_LIMIT } from "../platform/RegularFile.ts"
import { ArchiveTar, type PendingMember } from "./ArchiveTar.ts"
import type { ImageWriter, ReadyImage } from "./ReadyImage.ts"

export class DockerArchiveWriter implements ImageWriter {
  /** One member after another: a layer's place depends on the sizes before it. */
  readonly parallel = false
  private readonly fd: number
  private readonly tar: ArchiveTar
  /** Layer IDs and config names in the archive. */
  private readonly written = new Set<string>()
  private pending: PendingMember | undefined
  private closed = false
  private imageStart = 0
  private imageMembers: Array<string> = []
  // Byte-identical v1 images are one image (one config): one entry, with all their tags, as docker save writes it.
  private readonly manifest = new Map<string, { tags: Array<string>; layers: ReadonlyArray<GraphId> }>()
  private readonly repositories = new Map<string, Map<string, string>>()

  constructor(private readonly file: string, private readonly root: string) {
    this.fd = fs.openSync(file, "wx", 0o644)
    this.tar = new ArchiveTar(this.fd)
  }

  beginImage(): void {
    this.imageStart = this.tar.position
    this.imageMembers = []
  }

  has(id: GraphId): boolean {
    return this.written.has(id)
  }

  beginLayer(id: GraphId) {
    this.tar.directory(id)
    this.tar.file(`${id}/VERSION`, "1.0")
    this.tar.file(`${id}/json`, readSmallFileSync(graphPaths(this.root, id).json, SMALL_FILE_LIMIT.config))
    this.pending = this.tar.beginMember(`${id}/layer.tar`)
    return { file: this.file, position: this.pending.contentAt }
  }

  endLayer(id: GraphId, _diffId: string, tarBytes: number): Promise<void> {
    this.tar.endMember(this.pending!, tarBytes)
    this.pending = undefined
    this.written.add(id)
    this.imageMembers.push(id)
    return Promise.resolve()
  }

  addImage(image: ReadyImage): void {
    const configName = `${image.imageId.slice("sha256:".length)}.json`
    if (!this.written.has(configName)) {
      this.tar.file(configName, image.config)
      this.written.add(configName)
      this.imageMembers.push(configName)
    }
    const entry = this.manifest.get(configName) ?? { tags: [], layers: image.chain }
    this.manifest.set(configName, entry)
    for (const reference of image.references) {
      if (reference.kind !== "tag") continue
      if (!entry.tags.includes(reference.key)) entry.tags.push(reference.key)
      const tags = this.repositories.get(reference.repository) ?? new Map<string, string>()
      this.repositories.set(reference.repository, tags)
      tags.set(reference.key.slice(reference.repository.length + 1), image.v1Id)
    }
  }

  dropImage(): void {
    this.tar.rewind(this.imageStart)
    this.pending = undefined
    for (const member of this.imageMembers) this.written.delete(member)
    this.imageMembers = []
  }

  finish(): void {
    try {
      this.tar.file(
        "manifest.json",
        `[${
          [...this.manifest].map(([config, { tags, layers }]) =>
            `{"Config":${goQuote(config)},"RepoTags":${tags.length === 0 ? "null" : `[${tags.map((t) => goQuote(t)).join(",")}]`},` +
            `"Layers":[${layers.map((id) => goQuote(`${id}/layer.tar`)).join(",")}]}`
          ).join(",")
        }]`,
      )
      if (this.repositories.size > 0) {
        const text = `{${[...this.repositories].map(([name, tags]) =>
          `${goQuote(name)}:{${[...tags].map(([tag, id]) => `${goQuote(tag)}:${goQuote(id)}`).join(",")}}`
        ).join(",")}}\n`
        this.tar.file("repositories", text)
      }
      this.tar.close()
      fs.fsyncSync(this.fd)
    } finally {
      this.close()
    }
  }

  /** Closes the file (also when the export stops early). */
  close(): void {
    if (this.closed) return
    this.closed = true
    fs.closeSync(this.fd)
  }
}
