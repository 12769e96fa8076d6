/**
 * Builds a legacy Docker (<= 1.9) graph from generated layer tars, with
 * tar-split metadata stored as Docker 1.9 stored it on pull, so that every
 * layer's diffID is known: the SHA-256 of the tar it was built from. A
 * self-check that needs no oracle, for the demo, the tests and the benchmark.
 *
 *   bun scripts/make-graph.ts --out DIR --driver vfs|overlay|aufs|btrfs
 *       [--size 64MiB] [--layers 4] [--seed 1] [--big-files 0] [--big-size 128MiB|10MiB-200MiB] [--expect FILE]
 *       [--small-files N] [--small-max 64KiB] [--long-names] [--busybox /bin/busybox]
 *
 * Small files fill each layer's share of `--size` (what big files leave), or
 * with `--small-files N` are N a layer; each is under `--small-max` bytes.
 * `--big-size A-B` draws each big file's size between A and B.
 * `--long-names` gives one small file in 16 a name over 100 bytes, carried in
 * a GNU `././@LongLink` member or a PAX header (alternately), as real layers have.
 *
 * `--busybox FILE` puts that (static) busybox at /bin/busybox of the base
 * layer, with /bin/sh and /bin/echo linked to it, so the image really runs.
 *
 * `--expect FILE` writes `{ driver, layers: [{ id, parent, diffId, size, tarBytes }] }`.
 * Memory stays bounded: big files are written and hashed in 1 MiB chunks.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { gzipSync } from "node:zlib"
import { makeCrc64Engine } from "../src/crc/Crc64Engine.ts"
import { type MemberHeader, TarRecorder } from "./make-graph/TarRecorder.ts"

const DRIVERS = ["vfs", "overlay", "aufs", "btrfs"] as const
type Driver = (typeof DRIVERS)[number]

/** Where a driver keeps a layer's files, relative to the Docker root. */
const layerDir = (driver: Driver, id: string): string =>
  driver === "vfs"
    ? `vfs/dir/${id}`
    : driver === "overlay"
    ? `overlay/${id}/root`
    : driver === "aufs"
    ? `aufs/diff/${id}`
    : `btrfs/subvolumes/${id}`

const parseSize = (text: string): number => {
  const match = /^(\d+(?:\.\d+)?)\s*(|k|kib|m|mib|g|gib)$/i.exec(text.trim())
  if (match === null) throw new Error(`Cannot read size ${text}: use a number with KiB, MiB or GiB`)
  const unit = match[2]!.toLowerCase()[0]
  const scale = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1
  return Math.round(Number(match[1]) * scale)
}

/** `128MiB` (every big file that size) or `10MiB-200MiB` (each drawn between the two). */
const parseSizeRange = (text: string): { min: number; max: number } => {
  const [low, high] = text.split("-")
  const min = parseSize(low!)
  const max = high === undefined ? min : parseSize(high)
  if (max < min) throw new Error(`Cannot read size range ${text}: the second size is smaller`)
  return { min, max }
}

/** xorshift32: fast, deterministic content from the seed. */
class Random {
  private state: number
  constructor(seed: number) {
    this.state = (seed * 2654435761) >>> 0 || 1
  }
  next(): number {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x >>> 0
    return this.state
  }
  below(n: number): number {
    return this.next() % n
  }
  hex64(): string {
    let out = ""
    while (out.length < 64) out += this.next().toString(16).padStart(8, "0")
    return out
  }
  fill(buffer: Uint8Array): void {
    const words = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 2)
    for (let i = 0; i < words.length; i++) words[i] = this.next()
    for (let i = words.length * 4; i < buffer.length; i++) buffer[i] = this.next() & 255
  }
}

interface Options {
  readonly out: string
  readonly driver: Driver
  readonly size: number
  readonly layers: number
  readonly seed: number
  readonly bigFiles: number
  /** Each big file's size is drawn from [min, max]. */
  readonly bigSize: { readonly min: number; readonly max: number }
  readonly smallFiles: number | undefined
  readonly smallMax: number
  readonly longNames: boolean
  readonly expect: string | undefined
  readonly busybox: string | undefined
}

const CHUNK = 1 << 20

/** Generates one layer's members into `dir` (the driver's layer directory) and the recorder. */
const buildLayer = (
  options: Options,
  random: Random,
  index: number,
  dir: string,
  recorder: TarRecorder,
  fullCopy: boolean,
  bigFiles: number,
): void => {
  const mtime = 1450000000 + index * 1000
  const chunk = new Uint8Array(CHUNK)
  const directories: Array<[string, number]> = []
  const directory = (name: string) => {
    recorder.add({ name: `${name}/`, mode: 0o755, type: "directory", size: 0, mtime })
    fs.mkdirSync(path.join(dir, name), { recursive: true })
    directories.push([name, mtime])
  }
  const file = (name: string, size: number, mode = 0o644, longName?: "gnu" | "pax") => {
    const target = path.join(dir, name)
    fs.rmSync(target, { force: true }) // a new inode, never a write through an overlay hard link
    const fd = fs.openSync(target, "w", mode)
    recorder.add({ name, mode, type: "file", size, mtime, ...(longName === undefined ? {} : { longName }) }, (sink) => {
      for (let left = size; left > 0;) {
        const piece = chunk.subarray(0, Math.min(left, CHUNK))
        random.fill(piece)
        fs.writeSync(fd, piece)
        sink(piece)
        left -= piece.length
      }
    })
    fs.closeSync(fd)
    fs.chmodSync(target, mode)
    fs.utimesSync(target, mtime, mtime)
  }
  const member = (header: MemberHeader, make: () => void) => {
    recorder.add(header)
    make()
  }

  if (index === 0 && options.busybox !== undefined) {
    const binary = fs.readFileSync(options.busybox)
    directory("bin")
    const target = path.join(dir, "bin/busybox")
    fs.writeFileSync(target, binary, { mode: 0o755 })
    fs.chmodSync(target, 0o755)
    fs.utimesSync(target, mtime, mtime)
    recorder.add({ name: "bin/busybox", mode: 0o755, type: "file", size: binary.length, mtime }, (sink) => sink(binary))
    for (const applet of ["sh", "echo"]) {
      member({ name: `bin/${applet}`, mode: 0o777, type: "symlink", size: 0, mtime, linkName: "busybox" }, () =>
        fs.symlinkSync("busybox", path.join(dir, "bin", applet)))
    }
  }
  const top = `l${index}`
  directory(top)
  const meanBig = (options.bigSize.min + options.bigSize.max) / 2
  const smallBudget = Math.max(0, Math.floor((options.size - options.bigFiles * meanBig) / options.layers))
  const fixedSizes = [0, 1, 511, 512, 513]
  let used = 0
  let count = 0
  const more = () => options.smallFiles === undefined ? used < smallBudget : count < options.smallFiles
  for (let d = 0; more() || d === 0; d++) {
    directory(`${top}/d${d}`)
    for (let f = 0; f < 32 && (more() || f < fixedSizes.length); f++) {
      const size = d === 0 && f < fixedSizes.length ? fixedSizes[f]! : random.below(options.smallMax)
      const long = options.longNames && f % 16 === 15
      const name = long ? `${top}/d${d}/${"a-long-file-name-".repeat(6)}f${f}` : `${top}/d${d}/f${f}`
      file(name, size, f === 1 ? 0o755 : 0o644, long ? (d % 2 === 0 ? "gnu" : "pax") : undefined)
      used += size
      count++
    }
  }
  member({ name: `${top}/link`, mode: 0o777, type: "symlink", size: 0, mtime, linkName: "d0/f1" }, () =>
    fs.symlinkSync("d0/f1", path.join(dir, top, "link")))
  member({ name: `${top}/hard`, mode: 0o755, type: "hardlink", size: 0, mtime, linkName: `${top}/d0/f1` }, () =>
    fs.linkSync(path.join(dir, top, "d0/f1"), path.join(dir, top, "hard")))
  for (let b = 0; b < bigFiles; b++) {
    const { min, max } = options.bigSize
    file(`${top}/big${b}.bin`, min === max ? min : min + random.below(max - min + 1))
  }

  if (index > 0) {
    // A child changes its parent: rewrites one file and deletes another (a whiteout).
    const parentDir = `l${index - 1}/d0`
    directory(`l${index - 1}`)
    directory(parentDir)
    file(`${parentDir}/f2`, 700 + index)
    const whiteout = `${parentDir}/.wh.f3`
    recorder.add({ name: whiteout, mode: 0o644, type: "file", size: 0, mtime })
    if (fullCopy) fs.rmSync(path.join(dir, parentDir, "f3"), { force: true })
    else fs.writeFileSync(path.join(dir, whiteout), "")
  }
  for (const [name, time] of directories.reverse()) fs.utimesSync(path.join(dir, name), time, time)
}

const v1Json = (id: string, parent: string | undefined, index: number, size: number): string =>
  JSON.stringify({
    id,
    ...(parent === undefined ? {} : { parent }),
    created: new Date(Date.UTC(2015, 11, 1, 12, 0, index)).toISOString().replace(".000Z", ".123456789Z"),
    container: "4f3c2a1b0e".padEnd(64, "0"),
    container_config: { Hostname: "4f3c2a1b0e", Cmd: ["/bin/sh", "-c", `#(nop) ADD layer ${index}`] },
    docker_version: "1.9.1",
    author: "make-graph",
    config: { Hostname: "4f3c2a1b0e", Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"] },
    architecture: "amd64",
    os: "linux",
    Size: size,
  })

/** Builds the whole graph; returns what `--expect` records. */
export const makeGraph = (options: Options) => {
  const root = options.out
  if (fs.existsSync(root) && fs.readdirSync(root).length > 0) throw new Error(`Cannot build a graph in ${root}: not empty`)
  fs.mkdirSync(path.join(root, "graph"), { recursive: true })
  const random = new Random(options.seed)
  const engine = makeCrc64Engine()
  const layers: Array<{ id: string; parent: string | undefined; diffId: string; size: number; tarBytes: number }> = []
  let parent: string | undefined
  for (let index = 0; index < options.layers; index++) {
    const id = random.hex64()
    const dir = path.join(root, layerDir(options.driver, id))
    fs.mkdirSync(path.dirname(dir), { recursive: true })
    const fullCopy = options.driver !== "aufs"
    if (parent !== undefined && fullCopy) {
      // vfs and btrfs copy the parent's tree; overlay hard-links its files, as Docker's drivers did.
      const flags = options.driver === "overlay" ? "-al" : "-a"
      const copy = spawnSync("cp", [flags, path.join(root, layerDir(options.driver, parent)), dir])
      if (copy.status !== 0) throw new Error(`Cannot copy the parent layer: ${copy.stderr}`)
    } else {
      fs.mkdirSync(dir, { recursive: true })
    }
    const bigFiles = Math.floor(options.bigFiles / options.layers) + (index < options.bigFiles % options.layers ? 1 : 0)
    const recorder = new TarRecorder(engine)
    buildLayer(options, random, index, dir, recorder, fullCopy, bigFiles)
    recorder.finish()
    const graphDir = path.join(root, "graph", id)
    fs.mkdirSync(graphDir)
    fs.writeFileSync(path.join(graphDir, "json"), v1Json(id, parent, index, recorder.size))
    fs.writeFileSync(path.join(graphDir, "layersize"), String(recorder.size))
    fs.writeFileSync(path.join(graphDir, "tar-data.json.gz"), gzipSync(recorder.lines.join("")), { mode: 0o600 })
    if (options.driver === "aufs") {
      const ancestors = [...layers].reverse().map((layer) => layer.id)
      fs.mkdirSync(path.join(root, "aufs/layers"), { recursive: true })
      fs.mkdirSync(path.join(root, "aufs/mnt", id), { recursive: true })
      fs.writeFileSync(path.join(root, "aufs/layers", id), ancestors.map((a) => a + "\n").join(""))
    }
    const diffId = `sha256:${recorder.sha.digest("hex")}`
    layers.push({ id, parent, diffId, size: recorder.size, tarBytes: recorder.tarBytes })
    process.stderr.write(`layer ${index + 1}/${options.layers} ${id.slice(0, 12)}: ${(recorder.tarBytes / 1e6).toFixed(1)} MB tar, ${diffId}\n`)
    parent = id
  }
  fs.writeFileSync(
    path.join(root, `repositories-${options.driver}`),
    JSON.stringify({ Repositories: { "sample/app": { latest: parent } } }),
  )
  return { driver: options.driver, layers }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      out: { type: "string" },
      driver: { type: "string", default: "vfs" },
      size: { type: "string", default: "64MiB" },
      layers: { type: "string", default: "4" },
      seed: { type: "string", default: "1" },
      "big-files": { type: "string", default: "0" },
      "big-size": { type: "string", default: "128MiB" },
      "small-files": { type: "string" },
      "small-max": { type: "string", default: "64KiB" },
      "long-names": { type: "boolean", default: false },
      expect: { type: "string" },
      busybox: { type: "string" },
    },
  })
  const driver = values.driver as Driver
  if (values.out === undefined || !DRIVERS.includes(driver)) {
    process.stderr.write(`usage: make-graph.ts --out DIR --driver ${DRIVERS.join("|")} [--size 64MiB] [--layers 4] ` +
      "[--seed 1] [--big-files 0] [--big-size 128MiB|10MiB-200MiB] [--small-files N] [--small-max 64KiB] [--long-names] " +
      "[--expect FILE] [--busybox FILE]\n")
    process.exit(2)
  }
  const started = performance.now()
  const result = makeGraph({
    out: path.resolve(values.out),
    driver,
    size: parseSize(values.size),
    layers: Math.max(1, Number(values.layers)),
    seed: Number(values.seed),
    bigFiles: Number(values["big-files"]),
    bigSize: parseSizeRange(values["big-size"]),
    smallFiles: values["small-files"] === undefined ? undefined : Number(values["small-files"]),
    smallMax: parseSize(values["small-max"]),
    longNames: values["long-names"],
    expect: values.expect,
    busybox: values.busybox,
  })
  if (values.expect !== undefined) fs.writeFileSync(values.expect, JSON.stringify(result, null, 2) + "\n")
  const total = result.layers.reduce((sum, layer) => sum + layer.tarBytes, 0)
  process.stderr.write(`built ${driver} graph in ${values.out}: ${result.layers.length} layers, ` +
    `${(total / 1e6).toFixed(1)} MB of tar, ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}
