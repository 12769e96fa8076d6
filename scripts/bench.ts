/**
 * Benchmark of `checksums` through the CLI, startup included, optionally
 * side by side with Docker's Go migrator (docker/v1.10-migrator) in the same
 * run, on generated aufs graphs, page cache warm:
 *
 *   bun scripts/bench.ts [--reference PATH] [--cli dist/cas-migrator] [--rounds 3] [--quick] [--jobs N]
 *                        [--no-metadata]         (npm run bench -- ...)
 *
 * `--reference PATH` is a docker/v1.10-migrator binary (built from its source
 * with Debian's Go by `bash scripts/build-go-reference.sh SOURCE`); without it
 * only ours runs. After the checksums cases it runs the
 * metadata case (`migrate` of 10,000 pre-checksummed images,
 * scripts/bench-metadata.ts) with the same CLI, where that script exists,
 * unless `--no-metadata`.
 *
 * Graphs (built once in $TMPDIR by scripts/make-graph.ts, reused after):
 * - "7 layers": the shape of real graphs: 7 layers of about 150 MB, each with
 *   3000 small files of 0-16 KiB and two files of 10-100 MiB, GNU and PAX
 *   long-name headers; about 1.05 GB of tar;
 * - "one layer": a single layer of about 600 MB (3000 small files, 4 big);
 * - "fallback": the 7-layer graph without tar-data.json.gz, so every layer's
 *   tar is regenerated from its files (the fallback path).
 * `--quick` makes them about a fifth of that and runs one round.
 *
 * Every run starts from a fresh copy of the graph without helper files (the
 * layer files are hard links to the same inodes, so the page cache stays
 * warm); rounds alternate which tool goes first. A run's time is the wall
 * time of the process, start-up included; MB/s is the layer's tar bytes (as
 * generated) over it; peak RSS comes from GNU time. After every run the
 * helper files are checked: the diffIDs of tar-split layers against the
 * generator's, ours against the reference's (see `compareFallback` for the
 * fallback path). The native SHA-256 ceiling is measured in the same run.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { gunzipSync } from "node:zlib"

const MB = 1e6
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    reference: { type: "string" },
    cli: { type: "string" },
    rounds: { type: "string" },
    quick: { type: "boolean", default: false },
    jobs: { type: "string" },
    "no-metadata": { type: "boolean", default: false },
  },
})
const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))
const quick = values.quick
const rounds = Number(values.rounds ?? (quick ? 1 : 3))
const cli = path.resolve(values.cli ?? path.join(repo, "dist/cas-migrator"))
const reference = values.reference === undefined ? undefined : path.resolve(values.reference)
const TIME = "/usr/bin/time"
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cas-migrator-bench-run-"))

const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`)
  fs.rmSync(scratch, { recursive: true, force: true })
  process.exit(2)
}
if (!fs.existsSync(cli)) fail(`no CLI at ${cli}: build it with \`bun build.ts --only glibc\` or give --cli`)
if (reference !== undefined && !fs.existsSync(reference)) fail(`no reference migrator at ${reference}`)
if (!fs.existsSync(TIME)) fail(`${TIME} (GNU time) is needed for peak RSS: apt-get install time`)

interface ExpectedLayer {
  readonly id: string
  readonly diffId: string
  readonly size: number
  readonly tarBytes: number
}

interface Graph {
  readonly label: string
  readonly root: string
  readonly layers: ReadonlyArray<ExpectedLayer>
  /** Tar-split present: every diffID must be the generator's. */
  readonly tarSplit: boolean
}

/** Builds a generated graph once (named by its arguments) and reuses it. */
const generated = (label: string, args: Array<string>): Graph => {
  const key = createHash("sha256").update(args.join(" ")).digest("hex").slice(0, 10)
  const dir = path.join(os.tmpdir(), `cas-migrator-bench-${key}`)
  const expect = path.join(dir, "expect.json")
  if (!fs.existsSync(expect)) {
    fs.rmSync(dir, { recursive: true, force: true })
    process.stderr.write(`building ${label} in ${dir} ...\n`)
    const made = spawnSync(process.execPath, [
      path.join(repo, "scripts/make-graph.ts"), "--out", path.join(dir, "root"), "--driver", "aufs", "--seed", "13",
      "--expect", `${expect}.tmp`, ...args,
    ], { stdio: ["ignore", "ignore", "inherit"] })
    if (made.status !== 0) fail(`make-graph failed for ${label}`)
    fs.renameSync(`${expect}.tmp`, expect)
  }
  const { layers } = JSON.parse(fs.readFileSync(expect, "utf8")) as { layers: Array<ExpectedLayer> }
  return { label, root: path.join(dir, "root"), layers, tarSplit: true }
}

/** The same graph as layers pulled before Docker 1.8: no tar-data.json.gz (layer files shared by hard links). */
const withoutTarSplit = (graph: Graph): Graph => {
  const root = `${graph.root}-no-tar-split`
  if (!fs.existsSync(root)) {
    copyTree(graph.root, `${root}.tmp`)
    for (const layer of graph.layers) fs.rmSync(path.join(`${root}.tmp`, "graph", layer.id, "tar-data.json.gz"))
    fs.renameSync(`${root}.tmp`, root)
  }
  return { ...graph, label: `fallback: ${graph.label}, no tar-split`, root, tarSplit: false }
}

const run = (command: string, args: Array<string>, options: { stdout?: "ignore" | "pipe" } = {}) => {
  const result = spawnSync(command, args, { stdio: ["ignore", options.stdout ?? "ignore", "pipe"], maxBuffer: 1 << 30 })
  if (result.status !== 0) fail(`${command} ${args.join(" ")} exited with ${result.status}: ${result.stderr}`)
  return result
}

/** A copy whose layer files are hard links (same inodes, warm cache) and whose graph/ is a real copy. */
const copyTree = (from: string, to: string) => {
  fs.rmSync(to, { recursive: true, force: true })
  run("cp", ["-al", from, to])
  fs.rmSync(path.join(to, "graph"), { recursive: true })
  run("cp", ["-a", path.join(from, "graph"), path.join(to, "graph")])
}

const HELPERS = [".migration-diffid", ".migration-size", ".migration-tardata"]

/** A fresh copy of the graph without helper files, for one run. */
const freshCopy = (graph: Graph, name: string): string => {
  const to = path.join(scratch, name)
  copyTree(graph.root, to)
  for (const layer of graph.layers) {
    for (const helper of HELPERS) {
      if (fs.existsSync(path.join(to, "graph", layer.id, helper))) fail(`${graph.root} has helper files: rebuild it`)
    }
  }
  return to
}

interface Measured {
  readonly seconds: number
  /** User + system CPU seconds of the process and its threads. */
  readonly cpuSeconds: number
  readonly rssMB: number
  /** Per layer: the helper files written. */
  readonly helpers: Map<string, { diffId: string; size: number; tarData: Buffer }>
}

type Tool = "ours" | "go"

/** One run of a tool on a fresh copy: wall time (start-up included) and peak RSS. */
const measure = (tool: Tool, graph: Graph, round: number): Measured => {
  const root = freshCopy(graph, `${tool}-${round}`)
  const timeFile = path.join(scratch, "time.txt")
  const command = tool === "ours"
    ? [cli, "checksums", "-g", root, "-s", "aufs", ...(values.jobs === undefined ? [] : ["-j", values.jobs])]
    : [reference!, "-g", root, "-s", "aufs"]
  const started = performance.now()
  // Both tools' logs go to /dev/null (the Go migrator logs every layer at debug level).
  run(TIME, ["-f", "%M %U %S", "-o", timeFile, ...command])
  const seconds = (performance.now() - started) / 1000
  const [rssKiB, user, system] = fs.readFileSync(timeFile, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number)
  const rssMB = rssKiB! * 1024 / MB
  const cpuSeconds = user! + system!
  const helpers = new Map<string, { diffId: string; size: number; tarData: Buffer }>()
  for (const layer of graph.layers) {
    const dir = path.join(root, "graph", layer.id)
    const read = (name: string) => fs.readFileSync(path.join(dir, name))
    helpers.set(layer.id, {
      diffId: read(".migration-diffid").toString(),
      size: Number(read(".migration-size").toString()),
      tarData: read(".migration-tardata"),
    })
  }
  fs.rmSync(root, { recursive: true })
  return { seconds, cpuSeconds, rssMB, helpers }
}

/** Bytes of one tar-split stream's segments and file entries, in order. */
const tarSplitEntries = (gz: Buffer) =>
  gunzipSync(gz).toString("utf8").split("\n").filter((line) => line !== "").map((line) =>
    JSON.parse(line) as { type: number; name?: string; size?: number; payload: string | null }
  )

/**
 * Offsets in a tar header where Go 1.5's archive/tar (Docker 1.10's, which we
 * reproduce) and today's differ for the same file: the mode (Go >= 1.10 no
 * longer writes the file type bits c_ISDIR, c_ISREG... into it), the mtime
 * (today's rounds it to the second, Go 1.5 truncated), the checksum, and
 * uname/gname (today's looks the names up in /etc/passwd).
 * A PAX header block besides: Go 1.5 named it PaxHeaders.<pid>/... with the
 * file's mtime and devmajor/devminor "0000000", today's PaxHeaders.0/... with mtime 0, no devmajor/minor.
 * And the header after a PAX header: Go 1.5 left the name (and prefix) empty
 * when the PAX header carries it, today's writes a truncated one.
 */
const GO_VERSION_FIELDS: ReadonlyArray<readonly [number, number]> = [[100, 108], [136, 148], [148, 156], [265, 329]]
const GO_VERSION_PAX_FIELDS: ReadonlyArray<readonly [number, number]> = [[0, 100], [329, 345]]
const GO_VERSION_AFTER_PAX_FIELDS: ReadonlyArray<readonly [number, number]> = [[0, 100], [345, 500]]
const PAX = 0x78

/**
 * The fallback path regenerates each tar from the files: the reference, rebuilt
 * with today's Go, writes headers Docker 1.10 did not, so its diffIDs differ
 * from ours (and Docker 1.10's). What must agree: the layer size, every file
 * entry (name, size, CRC-64 of the content) in the same order, and every
 * segment byte outside the header fields `GO_VERSION_FIELDS`.
 * Returns what differs beyond that, or undefined.
 */
const compareFallback = (ours: Buffer, go: Buffer): string | undefined => {
  const a = tarSplitEntries(ours)
  const b = tarSplitEntries(go)
  if (a.length !== b.length) return `${a.length} tar-split entries, reference ${b.length}`
  let offset = 0
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x.type !== y.type) return `entry ${i}: type ${x.type}, reference ${y.type}`
    if (x.type === 1) {
      if (x.name !== y.name || x.size !== y.size || x.payload !== y.payload) return `entry ${i} (${x.name}) differs`
      offset += x.size ?? 0
      continue
    }
    const p = Buffer.from(x.payload ?? "", "base64")
    const q = Buffer.from(y.payload ?? "", "base64")
    if (p.length !== q.length) return `segment ${i}: ${p.length} bytes, reference ${q.length}`
    for (let j = 0; j < p.length; j++) {
      if (p[j] === q[j]) continue
      const inHeader = (offset + j) % 512
      const block = j - inHeader
      // A PAX header earlier in this segment (its header blocks are 512-aligned in the stream, as this one).
      let afterPax = false
      for (let earlier = block - 512; earlier >= 0; earlier -= 512) if (p[earlier + 156] === PAX) afterPax = true
      const fields = p[block + 156] === PAX
        ? [...GO_VERSION_FIELDS, ...GO_VERSION_PAX_FIELDS]
        : afterPax
        ? [...GO_VERSION_FIELDS, ...GO_VERSION_AFTER_PAX_FIELDS]
        : GO_VERSION_FIELDS
      if (!fields.some(([from, to]) => inHeader >= from && inHeader < to)) {
        return `segment ${i}: byte ${inHeader} of a header block differs`
      }
    }
    offset += p.length
  }
  return undefined
}

/** Checks one run's helper files; the reference's run, if any, is compared with ours. */
const verify = (graph: Graph, tool: Tool, measured: Measured, ours: Measured | undefined) => {
  for (const layer of graph.layers) {
    const got = measured.helpers.get(layer.id)!
    if (got.size !== layer.size) fail(`${tool}, ${graph.label}: layer ${layer.id} size ${got.size}, expected ${layer.size}`)
    if (graph.tarSplit && got.diffId !== layer.diffId) {
      fail(`${tool}, ${graph.label}: layer ${layer.id} diffID ${got.diffId}, expected ${layer.diffId}`)
    }
    if (ours === undefined) continue
    const mine = ours.helpers.get(layer.id)!
    if (graph.tarSplit) continue // both equal the generator's
    if (mine.diffId === got.diffId) continue
    const difference = compareFallback(mine.tarData, got.tarData)
    if (difference === undefined && mine.size !== got.size) fail(`${graph.label}: layer ${layer.id}: size ${mine.size}, reference ${got.size}`)
    if (difference !== undefined) fail(`${graph.label}: layer ${layer.id}: our regenerated tar differs from the reference's: ${difference}`)
    fallbackHeaderOnly++
  }
}
let fallbackHeaderOnly = 0

/** Native SHA-256 for about two seconds on `threads` workers at once; total bytes per second. */
const shaCeiling = async (threads: number): Promise<number> => {
  const source = `
    import { createHash } from "node:crypto"
    self.onmessage = () => {
      const buffer = new Uint8Array(1 << 20).fill(7)
      const hash = createHash("sha256")
      const started = performance.now()
      let bytes = 0
      while (performance.now() - started < 2000) { hash.update(buffer); bytes += buffer.length }
      hash.digest()
      self.postMessage(bytes / ((performance.now() - started) / 1000))
    }`
  const file = path.join(scratch, "sha-ceiling.ts")
  fs.writeFileSync(file, source)
  const rates = await Promise.all(Array.from({ length: threads }, () =>
    new Promise<number>((resolve) => {
      const worker = new Worker(new URL(`file://${file}`).href, { type: "module" })
      worker.onmessage = (event: MessageEvent<number>) => {
        worker.terminate()
        resolve(event.data)
      }
      worker.postMessage(0)
    })))
  return rates.reduce((a, b) => a + b, 0)
}

/**
 * The least any tar-split reassembly in this runtime must do for `graph`, in
 * seconds of wall time: every layer file read from the page cache and hashed
 * with the native SHA-256, one layer at a time per thread on every core,
 * layers taken in the graph's order as our pool takes them (no tar-split
 * decoding, no headers, no CRC, no start-up). A bound on the ratio any
 * implementation here can reach against the reference. With `decode`, each
 * layer's tar-split metadata is also inflated and decoded (our decoder):
 * the least a reassembly adds to it.
 */
const readAndHashFloor = async (graph: Graph, threads: number, decode: boolean): Promise<number> => {
  const source = `
    import * as fs from "node:fs"
    import { createHash } from "node:crypto"
    import { gunzipSync } from "node:zlib"
    import { decodeEntryText, JsonValueSplitter } from ${JSON.stringify(path.join(repo, "src/tar/TarSplit.ts"))}
    const decodeTarSplit = (file) => {
      const splitter = new JsonValueSplitter()
      let entries = 0
      for (const value of splitter.push(new TextDecoder().decode(gunzipSync(fs.readFileSync(file))))) entries += decodeEntryText(value).type
      for (const value of splitter.finish()) entries += decodeEntryText(value).type
      return entries
    }
    const buffer = new Uint8Array(1 << 20)
    const hashTree = (dir, hash) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = dir + "/" + entry.name
        if (entry.isDirectory()) hashTree(file, hash)
        else if (entry.isFile()) {
          const fd = fs.openSync(file, "r")
          for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length)) > 0;) hash.update(buffer.subarray(0, n))
          fs.closeSync(fd)
        }
      }
    }
    self.onmessage = (event) => {
      const { dir, tarData } = event.data
      if (tarData !== undefined) decodeTarSplit(tarData)
      const hash = createHash("sha256")
      hashTree(dir, hash)
      hash.digest()
      self.postMessage(0)
    }`
  const file = path.join(scratch, "read-and-hash-floor.ts")
  fs.writeFileSync(file, source)
  const workers = await Promise.all(Array.from({ length: threads }, () =>
    new Promise<Worker>((resolve) => {
      const worker = new Worker(new URL(`file://${file}`).href, { type: "module" })
      // Loaded once it answers an empty directory: start-up is not counted.
      worker.onmessage = () => resolve(worker)
      worker.postMessage({ dir: scratch })
    })))
  const queue = graph.layers.map((layer) => ({
    dir: path.join(graph.root, "aufs", "diff", layer.id),
    tarData: decode ? path.join(graph.root, "graph", layer.id, "tar-data.json.gz") : undefined,
  }))
  const started = performance.now()
  await Promise.all(workers.map((worker) =>
    new Promise<void>((resolve) => {
      const next = () => {
        const layer = queue.shift()
        if (layer === undefined) return resolve()
        worker.postMessage(layer)
      }
      worker.onmessage = next
      next()
    })))
  const seconds = (performance.now() - started) / 1000
  for (const worker of workers) worker.terminate()
  return seconds
}

const scale = (full: number) => String(quick ? Math.max(1, Math.round(full / 5)) : full)
const sevenLayers = generated(quick ? "7 layers, quick (~200 MB)" : "7 layers (~1.0 GB)", [
  "--layers", "7", "--small-files", scale(3000), "--small-max", "16KiB", "--long-names",
  "--big-files", "14", "--big-size", quick ? "2MiB-20MiB" : "10MiB-100MiB",
])
const oneLayer = generated(quick ? "one layer, quick (~120 MB)" : "one layer (~660 MB)", [
  "--layers", "1", "--small-files", scale(3000), "--small-max", "16KiB", "--long-names",
  "--big-files", "4", "--big-size", quick ? "20MiB-36MiB" : "100MiB-180MiB",
])
const graphs = [sevenLayers, oneLayer, withoutTarSplit(sevenLayers)]

const tarMB = (graph: Graph) => graph.layers.reduce((sum, layer) => sum + layer.tarBytes, 0) / MB
const median = (numbers: ReadonlyArray<number>) => {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
const range = (numbers: ReadonlyArray<number>, digits: number) =>
  numbers.length === 1
    ? numbers[0]!.toFixed(digits)
    : `${Math.min(...numbers).toFixed(digits)}-${Math.max(...numbers).toFixed(digits)}`

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : `bun ${process.versions.bun}`
process.stderr.write(
  `${os.availableParallelism()} x ${os.cpus()[0]?.model}, load ${os.loadavg()[0]!.toFixed(2)}; ${rounds} round(s); ` +
    `ours: ${path.relative(process.cwd(), cli)}${reference === undefined ? "" : `; reference: ${reference}`} (bench on ${runtime})\n`,
)

const results: Array<{ graph: Graph; ours: Array<Measured>; go: Array<Measured> }> = []
try {
  for (const graph of graphs) {
    // Warms the page cache (and checks the graph) with one unmeasured run of each tool.
    const warm = measure("ours", graph, -1)
    verify(graph, "ours", warm, undefined)
    if (reference !== undefined) verify(graph, "go", measure("go", graph, -1), warm)
    const entry = { graph, ours: [] as Array<Measured>, go: [] as Array<Measured> }
    for (let round = 0; round < rounds; round++) {
      const order: Array<Tool> = reference === undefined ? ["ours"] : round % 2 === 0 ? ["ours", "go"] : ["go", "ours"]
      let oursRun: Measured | undefined
      const pending: Array<Measured> = []
      for (const tool of order) {
        const measured = measure(tool, graph, round)
        if (tool === "ours") {
          oursRun = measured
          entry.ours.push(measured)
          verify(graph, "ours", measured, undefined)
        } else {
          entry.go.push(measured)
          pending.push(measured)
        }
      }
      for (const measured of pending) verify(graph, "go", measured, oursRun)
      const rate = (m: Measured) => `${(tarMB(graph) / m.seconds).toFixed(0)} MB/s (${m.cpuSeconds.toFixed(2)} s CPU)`
      process.stderr.write(
        `  ${graph.label}, round ${round + 1}: ours ${rate(oursRun!)}` +
          (pending.length > 0 ? `, reference ${rate(pending[0]!)}` : "") + "\n",
      )
    }
    results.push(entry)
  }

  const oneCore = await shaCeiling(1)
  const allCores = await shaCeiling(os.availableParallelism())
  // Best of a few: the bound is what the machine can do at its quietest.
  const floors: Array<number> = []
  const decodingFloors: Array<number> = []
  for (let i = 0; i < 3; i++) {
    floors.push(await readAndHashFloor(results[0]!.graph, os.availableParallelism(), false))
    decodingFloors.push(await readAndHashFloor(results[0]!.graph, os.availableParallelism(), true))
  }
  const floor = Math.min(...floors)
  const decodingFloor = Math.min(...decodingFloors)
  // The CLI's own start-up and exit, best of five: what every run adds to the work.
  const startups: Array<number> = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    run(cli, ["--version"])
    startups.push((performance.now() - started) / 1000)
  }
  const startup = Math.min(...startups)
  console.log(
    `\n| graph | tar MB | ours MB/s | ours CPU ns/B | ours peak RSS MB |` +
      (reference === undefined ? "" : " reference MB/s | reference CPU ns/B | reference peak RSS MB | ours / reference (time) | ours / reference (CPU) |"),
  )
  console.log(`| --- | --- | --- | --- | --- |${reference === undefined ? "" : " --- | --- | --- | --- | --- |"}`)
  for (const { graph, ours, go } of results) {
    const rates = (runs: Array<Measured>) => runs.map((m) => tarMB(graph) / m.seconds)
    const rss = (runs: Array<Measured>) => Math.max(...runs.map((m) => m.rssMB)).toFixed(0)
    const nsPerByte = (runs: Array<Measured>) => runs.map((m) => m.cpuSeconds * 1e9 / (tarMB(graph) * MB))
    const ratios = go.map((g, i) => g.seconds / ours[i]!.seconds)
    const cpuRatios = go.map((g, i) => g.cpuSeconds / ours[i]!.cpuSeconds)
    console.log(
      `| ${graph.label} | ${tarMB(graph).toFixed(0)} | ${range(rates(ours), 0)} | ${range(nsPerByte(ours), 2)} | ${rss(ours)} |` +
        (reference === undefined
          ? ""
          : ` ${range(rates(go), 0)} | ${range(nsPerByte(go), 2)} | ${rss(go)} | ${range(ratios, 2)}x (median ${
            median(ratios).toFixed(2)
          }x) | ${range(cpuRatios, 2)}x |`),
    )
  }
  const best = Math.max(...results[0]!.ours.map((m) => tarMB(results[0]!.graph) / m.seconds))
  console.log(
    `\nnative SHA-256 ceiling, this run: ${(oneCore / MB).toFixed(0)} MB/s on one core, ` +
      `${(allCores / MB).toFixed(0)} MB/s on ${os.availableParallelism()}; ours on "${results[0]!.graph.label}" reaches ` +
      `${((best * MB / allCores) * 100).toFixed(0)}% of it (best round)`,
  )
  const referenceMedian = results[0]!.go.length > 0 ? median(results[0]!.go.map((m) => m.seconds)) : undefined
  console.log(
    `floor on "${results[0]!.graph.label}", this run: ${floor.toFixed(3)} s to read and SHA-256 its layer files on ` +
      `${os.availableParallelism()} threads (no tar-split, no headers, no CRC, no start-up; best of 3)` +
      (referenceMedian === undefined ? "" : `, ${(referenceMedian / floor).toFixed(2)}x the reference's median ${referenceMedian.toFixed(3)} s`) +
      `; with its tar-split metadata inflated and decoded too: ${decodingFloor.toFixed(3)} s` +
      (referenceMedian === undefined ? "" : `, ${(referenceMedian / decodingFloor).toFixed(2)}x`) +
      `; and the CLI's start-up (\`--version\`, best of 5: ${startup.toFixed(3)} s) on top: ` +
      `${(decodingFloor + startup).toFixed(3)} s` +
      (referenceMedian === undefined ? "" : `, ${(referenceMedian / (decodingFloor + startup)).toFixed(2)}x`),
  )
  console.log(
    `MB/s: the graph's tar bytes over the wall time of the process (start-up included); CPU: user + system seconds of ` +
      `the process (GNU time) per tar byte, which a loaded machine distorts less than wall time; every run verified.`,
  )
  console.log(`load average at the end: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}`)
  if (fallbackHeaderOnly > 0) {
    console.log(
      `fallback: ${fallbackHeaderOnly} layer runs where the reference's diffID differs from ours only in the header ` +
        `fields today's Go archive/tar writes differently from Docker 1.10's (see compareFallback in scripts/bench.ts)`,
    )
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true })
}

const metadataBench = path.join(repo, "scripts/bench-metadata.ts")
if (!values["no-metadata"] && fs.existsSync(metadataBench)) {
  console.log("\nmetadata: migrate of pre-checksummed images (scripts/bench-metadata.ts)")
  spawnSync(process.execPath, [metadataBench, "--cli", cli, "--rounds", String(Math.max(1, rounds))], { stdio: "inherit" })
}
