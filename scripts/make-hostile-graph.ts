/**
 * Breaks a generated legacy graph on purpose, one way per kind, for the
 * hostile-input tests: files that must be small regular files made FIFOs,
 * symlinks to `/dev/zero` or huge; corrupt metadata (a gzip bomb, one huge
 * tar-split line, JSON nested 100,000 deep, payloads not base64, a CRC
 * mismatch, numbers out of range, entries out of order); broken structure (cycles,
 * self-parents, a 10,000-deep chain); malformed `repositories-<driver>` and
 * container configs.
 *
 *   bun scripts/make-graph.ts --out ROOT --driver vfs --expect ROOT.json ...
 *   bun scripts/make-hostile-graph.ts --root ROOT --expect ROOT.json --kind KIND
 *
 * Layers are given base first (make-graph's `--expect` file). Nothing here
 * reads or writes outside ROOT, except FIFOs' and symlinks' targets named on
 * purpose (`/dev/zero`).
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { Buffer } from "node:buffer"
import { constants, createGzip, gunzipSync, gzipSync } from "node:zlib"

export interface GraphLayers {
  readonly driver: string
  readonly layers: ReadonlyArray<{ readonly id: string; readonly parent?: string }>
}

const MiB = 1 << 20
const layerDirOf = (driver: string, id: string) =>
  driver === "vfs" ? `vfs/dir/${id}` : driver === "overlay" ? `overlay/${id}/root` : driver === "aufs" ? `aufs/diff/${id}` : `btrfs/subvolumes/${id}`

const mkfifo = (file: string) => {
  fs.rmSync(file, { force: true })
  execFileSync("mkfifo", [file])
}
const symlinkTo = (file: string, target: string) => {
  fs.rmSync(file, { force: true })
  fs.symlinkSync(target, file)
}
/** A file of `bytes` bytes written in 1 MiB pieces: `head`, then `fill`, then `tail`. */
const writeBig = (file: string, head: string, fill: string, bytes: number, tail: string) => {
  const fd = fs.openSync(file, "w")
  fs.writeSync(fd, head)
  const piece = fill.repeat(Math.ceil(MiB / fill.length)).slice(0, MiB)
  let left = bytes - head.length - tail.length
  for (; left >= MiB; left -= MiB) fs.writeSync(fd, piece)
  fs.writeSync(fd, piece.slice(0, left))
  fs.writeSync(fd, tail)
  fs.closeSync(fd)
}
/** gzip of `text` repeated to `bytes` bytes, streamed (a gzip bomb needs no gigabytes in memory). */
const writeGzipRepeated = async (file: string, piece: string, bytes: number, tail = "") => {
  const gzip = createGzip({ level: constants.Z_BEST_COMPRESSION })
  const out = fs.createWriteStream(file)
  const done = new Promise<void>((resolve, reject) => {
    out.on("finish", () => resolve())
    out.on("error", reject)
  })
  gzip.pipe(out)
  const chunk = Buffer.from(piece.repeat(Math.max(1, Math.floor(MiB / piece.length)))) // whole pieces: lines stay lines
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!gzip.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) {
      await new Promise<void>((resolve) => gzip.once("drain", () => resolve()))
    }
  }
  gzip.end(tail)
  await done
}
const deepJson = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

const randomId = (seed: string) => createHash("sha256").update(seed).digest("hex")

/** A container of `image` whose config is `config` (the default: a minimal valid one). */
const addContainer = (root: string, image: string, config?: string) => {
  const id = randomId(`container-${image}-${config?.length ?? 0}`)
  const dir = path.join(root, "containers", id)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "config.json"), config ?? JSON.stringify({ ID: id, Image: image, Config: {}, State: {} }))
  return { id, dir }
}

/** A chain of `depth` layers above the graph's top layer, each with Docker's helper files already there (no hashing). */
const addChain = (root: string, graph: GraphLayers, depth: number) => {
  const emptyTar = gzipSync("")
  let parent = graph.layers[graph.layers.length - 1]!.id
  for (let i = 0; i < depth; i++) {
    const id = randomId(`chain-${i}`)
    const dir = path.join(root, "graph", id)
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "json"), JSON.stringify({ id, parent, created: "2015-01-01T00:00:00Z", container_config: {} }))
    fs.writeFileSync(path.join(dir, ".migration-diffid"), "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")
    fs.writeFileSync(path.join(dir, ".migration-size"), "0")
    fs.writeFileSync(path.join(dir, ".migration-tardata"), emptyTar)
    fs.mkdirSync(path.join(root, layerDirOf(graph.driver, id)), { recursive: true })
    parent = id
  }
  return parent
}

/** Every way to break a graph, by name. Each returns the item it broke (a layer or container ID, or a file). */
export const HOSTILE_KINDS: Record<string, (root: string, graph: GraphLayers) => string | Promise<string>> = {
  "fifo-json": (root, g) => (mkfifo(path.join(root, "graph", top(g), "json")), top(g)),
  "fifo-parent": (root, g) => (mkfifo(path.join(root, "graph", top(g), "parent")), top(g)),
  "fifo-tar-data": (root, g) => (mkfifo(path.join(root, "graph", top(g), "tar-data.json.gz")), top(g)),
  "fifo-layersize": (root, g) => (mkfifo(path.join(root, "graph", top(g), "layersize")), top(g)),
  "fifo-docker-pid": (root) => (mkfifo(path.join(root, "docker.pid")), "docker.pid"),
  "fifo-container-config": (root, g) => {
    const { id, dir } = addContainer(root, top(g))
    mkfifo(path.join(dir, "config.json"))
    return id
  },
  "fifo-repositories": (root, g) => (mkfifo(path.join(root, `repositories-${g.driver}`)), `repositories-${g.driver}`),
  "dev-zero-json": (root, g) => (symlinkTo(path.join(root, "graph", top(g), "json"), "/dev/zero"), top(g)),
  "dev-zero-diffid": (root, g) => (symlinkTo(path.join(root, "graph", top(g), ".migration-diffid"), "/dev/zero"), top(g)),
  "dev-zero-checksum": (root, g) => (symlinkTo(path.join(root, "graph", top(g), "checksum"), "/dev/zero"), top(g)),
  "huge-json": (root, g) => {
    const file = path.join(root, "graph", top(g), "json")
    const json = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
    const head = JSON.stringify(json).slice(0, -1) + `,"comment":"`
    writeBig(file, head, "x", 100 * MiB, `"}`)
    return top(g)
  },
  "huge-container-config": (root, g) => {
    const { id, dir } = addContainer(root, top(g))
    writeBig(path.join(dir, "config.json"), `{"Image":"${top(g)}","Junk":"`, "y", 200 * MiB, `"}`)
    return id
  },
  "huge-tar-split-line": async (root, g) => {
    await writeGzipRepeated(path.join(root, "graph", top(g), "tar-data.json.gz"), "A", 200 * MiB, "\n")
    return top(g)
  },
  "gzip-bomb": async (root, g) => {
    await writeGzipRepeated(path.join(root, "graph", top(g), "tar-data.json.gz"), "\0", 2048 * MiB)
    return top(g)
  },
  "gzip-bomb-lines": async (root, g) => {
    await writeGzipRepeated(path.join(root, "graph", top(g), "tar-data.json.gz"), `{"type":2,"payload":"AAAA","position":0}\n`, 1024 * MiB)
    return top(g)
  },
  "truncated-gzip": (root, g) => {
    const file = path.join(root, "graph", top(g), "tar-data.json.gz")
    const bytes = fs.readFileSync(file)
    fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1))
    return top(g)
  },
  "million-tiny-entries": (root, g) => {
    // A valid stream: the layer's entries after a million empty segments (each adds nothing to the tar).
    const file = path.join(root, "graph", top(g), "tar-data.json.gz")
    const text = new TextDecoder().decode(gunzipSync(fs.readFileSync(file)))
    fs.writeFileSync(file, gzipSync(`{"type":2,"payload":"","position":0}\n`.repeat(1_000_000) + text))
    return top(g)
  },
  "deep-json-image": (root, g) => {
    const file = path.join(root, "graph", top(g), "json")
    const json = JSON.stringify(JSON.parse(fs.readFileSync(file, "utf8")))
    fs.writeFileSync(file, json.slice(0, -1) + `,"Deep":${deepJson(100_000)}}`)
    return top(g)
  },
  "deep-json-container": (root, g) => {
    const { id } = addContainer(root, top(g), `{"ID":"x","Image":"${top(g)}","Deep":${deepJson(100_000)}}`)
    return id
  },
  "invalid-utf8-json": (root, g) => {
    const file = path.join(root, "graph", top(g), "json")
    const json = JSON.stringify(JSON.parse(fs.readFileSync(file, "utf8")))
    fs.writeFileSync(file, Buffer.concat([Buffer.from(json.slice(0, -1) + `,"comment":"`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`"}`)]))
    return top(g)
  },
  "json-null": (root, g) => (fs.writeFileSync(path.join(root, "graph", top(g), "json"), "null"), top(g)),
  "json-array": (root, g) => (fs.writeFileSync(path.join(root, "graph", top(g), "json"), "[1,2]"), top(g)),
  "json-empty": (root, g) => (fs.writeFileSync(path.join(root, "graph", top(g), "json"), ""), top(g)),
  "json-mismatched-id": (root, g) => {
    const file = path.join(root, "graph", top(g), "json")
    const json = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
    fs.writeFileSync(file, JSON.stringify({ ...json, id: randomId("someone else") }))
    return top(g)
  },
  "parent-cycle": (root, g) => {
    const [a, b] = [g.layers[0]!.id, top(g)]
    fs.writeFileSync(path.join(root, "graph", a, "parent"), b)
    return a
  },
  "self-parent": (root, g) => (fs.writeFileSync(path.join(root, "graph", top(g), "parent"), top(g)), top(g)),
  "missing-parent": (root, g) => (fs.writeFileSync(path.join(root, "graph", top(g), "parent"), randomId("nobody")), top(g)),
  "deep-chain": (root, g) => addChain(root, g, 10_000),
  "repositories-array": (root, g) => {
    fs.writeFileSync(path.join(root, `repositories-${g.driver}`), JSON.stringify({ Repositories: { x: [top(g), top(g)] } }))
    return `repositories-${g.driver}`
  },
  "repositories-not-json": (root, g) => (fs.writeFileSync(path.join(root, `repositories-${g.driver}`), "{not json"), `repositories-${g.driver}`),
  "symlinked-layer-dir": (root, g) => {
    // An admin moved a layer's metadata to another disk: the root's structure, followed as Docker did.
    const moved = path.join(root, "moved-to-another-disk")
    fs.mkdirSync(moved)
    fs.renameSync(path.join(root, "graph", top(g)), path.join(moved, top(g)))
    fs.symlinkSync(path.join(moved, top(g)), path.join(root, "graph", top(g)))
    return top(g)
  },
  "tar-split-absolute-name": (root, g) => rewriteFirstFile(root, top(g), () => "/etc/shadow"),
  "tar-split-dotdot-name": (root, g) => rewriteFirstFile(root, top(g), () => "../../../../../../etc/passwd"),
  "symlink-out-of-layer": (root, g) =>
    rewriteFirstFile(root, top(g), (_name, layer) => {
      fs.symlinkSync("/etc", path.join(layer, "leads-out"))
      return "leads-out/passwd"
    }, g.driver),
  "fifo-as-layer-file": (root, g) =>
    rewriteFirstFile(root, top(g), (name, layer) => {
      mkfifo(path.join(layer, name))
      return name
    }, g.driver),
  "device-as-layer-file": (root, g) =>
    rewriteFirstFile(root, top(g), (name, layer) => {
      fs.rmSync(path.join(layer, name))
      execFileSync("mknod", [path.join(layer, name), "c", "1", "5"]) // /dev/zero's numbers
      return name
    }, g.driver),
  "odd-names-fallback": (root, g) => {
    // Names Linux allows and Docker's archiver wrote: a newline, 255 bytes, not UTF-8, a path of 3,500 bytes.
    const layer = path.join(root, layerDirOf(g.driver, top(g)))
    fs.writeFileSync(path.join(layer, "new\nline"), "n")
    fs.writeFileSync(path.join(layer, "x".repeat(255)), "255")
    fs.writeFileSync(Buffer.concat([Buffer.from(layer + "/"), Buffer.from([0x6e, 0xff, 0xfe, 0x6f])]), "raw")
    execFileSync("sh", ["-c", `cd "$1" && for i in $(seq 1 17); do d=$(printf 'd%.0s' $(seq 1 200)); mkdir "$d" && cd "$d"; done; echo deep > file`, "sh", layer])
    fs.rmSync(path.join(root, "graph", top(g), "tar-data.json.gz"))
    return top(g)
  },
  "tar-split-payload-not-base64": (root, g) =>
    editTarSplit(root, top(g), (entries) => {
      const segment = entries.find((entry) => entry.type === 2)!
      segment.payload = "not*base64!"
    }),
  "tar-split-crc-mismatch": (root, g) =>
    editTarSplit(root, top(g), (entries) => {
      const file = firstFileEntry(entries)
      file.payload = Buffer.from(Buffer.from(String(file.payload), "base64").map((byte) => byte ^ 0xff)).toString("base64")
    }),
  "tar-split-size-out-of-range": (root, g) => editTarSplit(root, top(g), (entries) => void (firstFileEntry(entries).size = 1e30)),
  "tar-split-entries-out-of-order": (root, g) =>
    editTarSplit(root, top(g), (entries) => {
      const i = entries.indexOf(firstFileEntry(entries))
      ;[entries[i - 1], entries[i]] = [entries[i]!, entries[i - 1]!]
    }),
  "json-number-out-of-range": (root, g) => {
    const file = path.join(root, "graph", top(g), "json")
    const config = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>
    fs.writeFileSync(file, JSON.stringify({ ...config, Size: 0 }).replace(/"Size":0/, '"Size":1e400'))
    return top(g)
  },
  "container-not-json": (root, g) => addContainer(root, top(g), "{\"Image\": ").id,
  "container-image-number": (root, g) => addContainer(root, top(g), `{"ID":"x","Image":42}`).id,
}

const top = (g: GraphLayers) => g.layers[g.layers.length - 1]!.id

/**
 * Renames the first non-empty file entry of a layer's tar-split to what
 * `rename` returns (given the old name and the layer directory, where it may
 * lay a trap); the layer's files stay as they were.
 */
const rewriteFirstFile = (root: string, id: string, rename: (name: string, layer: string) => string, driver = "vfs") =>
  editTarSplit(root, id, (entries) => {
    const entry = firstFileEntry(entries)
    entry.name = rename(String(entry.name), path.join(root, layerDirOf(driver, id)))
  })

type TarSplitEntry = Record<string, unknown>

/** The first file entry with content (type 1, size > 0). */
const firstFileEntry = (entries: ReadonlyArray<TarSplitEntry>): TarSplitEntry => {
  const entry = entries.find((e) => e.type === 1 && typeof e.size === "number" && e.size > 0)
  if (entry === undefined) throw new Error("no non-empty file entry in the tar-split")
  return entry
}

/** Rewrites a layer's `tar-data.json.gz` after `edit` changed its entries (one JSON object a line). */
const editTarSplit = (root: string, id: string, edit: (entries: Array<TarSplitEntry>) => void) => {
  const file = path.join(root, "graph", id, "tar-data.json.gz")
  const lines = new TextDecoder().decode(gunzipSync(fs.readFileSync(file))).split("\n").filter((line) => line !== "")
  const entries = lines.map((line) => JSON.parse(line) as TarSplitEntry)
  edit(entries)
  fs.writeFileSync(file, gzipSync(entries.map((entry) => JSON.stringify(entry)).join("\n") + "\n"))
  return id
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { root: { type: "string" }, expect: { type: "string" }, kind: { type: "string" } } })
  const make = HOSTILE_KINDS[values.kind ?? ""]
  if (values.root === undefined || values.expect === undefined || make === undefined) {
    process.stderr.write(`usage: make-hostile-graph.ts --root ROOT --expect ROOT.json --kind ${Object.keys(HOSTILE_KINDS).join("|")}\n`)
    process.exit(2)
  }
  const graph = JSON.parse(fs.readFileSync(values.expect, "utf8")) as GraphLayers
  process.stdout.write(`${await make(values.root, graph)}\n`)
}
