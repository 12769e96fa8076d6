/**
 * Builds a legacy graph of many images whose layers are already checksummed
 * (each has `.migration-diffid`, `.migration-size` and `.migration-tardata`,
 * as `checksums` leaves them), so that `migrate` has only metadata to write:
 * the 10,000-image case of the benchmark. Chains of `--depth` images, each
 * chain's top tagged in `repositories-vfs`, each layer with a registry
 * `checksum` (as pulled images had) and an empty vfs directory.
 *
 *   bun scripts/make-metadata-graph.ts --out DIR [--chains 500] [--depth 20] [--seed 1]
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { gzipSync } from "node:zlib"

export interface MetadataGraphOptions {
  readonly out: string
  readonly chains: number
  readonly depth: number
  readonly seed: number
}

const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex")

/** A small tar-split stream (one file, the tar's end), gzipped: `migrate` copies it, never reads it. */
const tarSplit = (index: number): Uint8Array =>
  gzipSync(
    `{"type":2,"payload":"${Buffer.alloc(512, index & 255).toString("base64")}","position":0}\n` +
      `{"type":1,"name":"l${index}/file","size":0,"payload":null,"position":1}\n` +
      `{"type":2,"payload":"${Buffer.alloc(1024).toString("base64")}","position":2}\n`,
  )

const v1Json = (id: string, parent: string | undefined, index: number): string =>
  JSON.stringify({
    id,
    ...(parent === undefined ? {} : { parent }),
    created: new Date(Date.UTC(2015, 11, 1, 12, 0, index % 60)).toISOString().replace(".000Z", ".123456789Z"),
    container: "4f3c2a1b0e".padEnd(64, "0"),
    container_config: { Hostname: "4f3c2a1b0e", Cmd: ["/bin/sh", "-c", `#(nop) ADD layer ${index}`] },
    docker_version: "1.9.1",
    author: "make-metadata-graph",
    config: { Hostname: "4f3c2a1b0e", Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"] },
    architecture: "amd64",
    os: "linux",
    Size: 1536,
  })

/** Writes the graph; returns the number of images. */
export const makeMetadataGraph = (options: MetadataGraphOptions): number => {
  const root = options.out
  if (fs.existsSync(root) && fs.readdirSync(root).length > 0) throw new Error(`Cannot build a graph in ${root}: not empty`)
  fs.mkdirSync(path.join(root, "graph"), { recursive: true })
  fs.mkdirSync(path.join(root, "vfs", "dir"), { recursive: true })
  const repositories: Record<string, Record<string, string>> = {}
  for (let chain = 0; chain < options.chains; chain++) {
    let parent: string | undefined
    for (let index = 0; index < options.depth; index++) {
      const id = sha256Hex(`image ${options.seed} ${chain} ${index}`)
      const dir = path.join(root, "graph", id)
      fs.mkdirSync(dir)
      fs.mkdirSync(path.join(root, "vfs", "dir", id))
      fs.writeFileSync(path.join(dir, "json"), v1Json(id, parent, index))
      fs.writeFileSync(path.join(dir, "layersize"), "1536")
      // Pulled layers shared between chains would share a blob; here each is its own.
      fs.writeFileSync(path.join(dir, "checksum"), `sha256:${sha256Hex(`blob ${options.seed} ${chain} ${index}`)}`)
      fs.writeFileSync(path.join(dir, ".migration-tardata"), tarSplit(index), { mode: 0o600 })
      fs.writeFileSync(path.join(dir, ".migration-size"), "1536", { mode: 0o600 })
      fs.writeFileSync(path.join(dir, ".migration-diffid"), `sha256:${sha256Hex(`layer ${options.seed} ${chain} ${index}`)}`, {
        mode: 0o600,
      })
      parent = id
    }
    if (parent !== undefined) repositories[`sample/app${chain}`] = { latest: parent }
  }
  fs.writeFileSync(path.join(root, "repositories-vfs"), JSON.stringify({ Repositories: repositories }))
  return options.chains * options.depth
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      out: { type: "string" },
      chains: { type: "string", default: "500" },
      depth: { type: "string", default: "20" },
      seed: { type: "string", default: "1" },
    },
  })
  if (values.out === undefined) {
    process.stderr.write("usage: make-metadata-graph.ts --out DIR [--chains 500] [--depth 20] [--seed 1]\n")
    process.exit(2)
  }
  const started = performance.now()
  const images = makeMetadataGraph({
    out: path.resolve(values.out),
    chains: Math.max(1, Number(values.chains)),
    depth: Math.max(1, Number(values.depth)),
    seed: Number(values.seed),
  })
  process.stderr.write(`built ${images} pre-checksummed images in ${values.out} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}
