/**
 * Benchmark of `checksums` (the tar-split path) on a generated legacy graph of
 * at least 1 GiB: thousands of small files and some files of 100+ MB. Prints,
 * measured in this one run: MB/s, CPU %, peak RSS, the machine's native
 * SHA-256 ceiling on all cores, and our rate as a fraction of it.
 *
 *   bun scripts/bench.ts [--graph DIR] [--jobs N]      (npm run bench)
 *
 * Without --graph it builds (once) three aufs graphs in $TMPDIR: a mixed one
 * (6 layers, 1.3 GB), one whose single layer is 600 MB (the case where only
 * the CRC lane can keep a second core busy), and the mixed one without
 * tar-split metadata (every layer's tar regenerated: the fallback path).
 * Each is hashed with and without CRC lanes.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { Effect, References } from "effect"
import { builtinDrivers } from "../plugins/index.ts"
import { checksums } from "../src/Checksums.ts"
import { HashPool } from "../src/HashPool.ts"

const MB = 1e6
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { graph: { type: "string" }, jobs: { type: "string" }, driver: { type: "string", default: "aufs" } },
})
const jobs = Number(values.jobs ?? os.availableParallelism())
const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))

/** Builds a generated graph once and reuses it. */
const generated = (name: string, args: Array<string>): string => {
  const dir = path.join(os.tmpdir(), name)
  if (fs.existsSync(path.join(dir, "graph"))) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  process.stderr.write(`building ${dir} ...\n`)
  const made = spawnSync(process.execPath, [
    path.join(repo, "scripts/make-graph.ts"), "--out", dir, "--driver", values.driver!, "--seed", "7", ...args,
  ], { stdio: ["ignore", "ignore", "inherit"] })
  if (made.status !== 0) process.exit(2)
  return dir
}

/** Removes tar-data.json.gz everywhere (layers pulled before Docker 1.8): every layer takes the fallback. */
const withoutTarSplit = (dir: string): string => {
  for (const id of fs.readdirSync(path.join(dir, "graph"))) fs.rmSync(path.join(dir, "graph", id, "tar-data.json.gz"), { force: true })
  return dir
}

const graphs = values.graph !== undefined ? [["given", values.graph] as const] : [
  ["mixed: 6 layers, ~40k small files + 4 x 160 MiB", generated("cas-migrator-bench", [
    "--size", "1280MiB", "--layers", "6", "--big-files", "4", "--big-size", "160MiB",
  ])] as const,
  ["one 600 MB layer: small files + 2 x 256 MiB", generated("cas-migrator-bench-one-layer", [
    "--size", "600MiB", "--layers", "1", "--big-files", "2", "--big-size", "256MiB",
  ])] as const,
  ["fallback: mixed graph without tar-split, every tar regenerated", withoutTarSplit(generated("cas-migrator-bench-fallback", [
    "--size", "1280MiB", "--layers", "6", "--big-files", "4", "--big-size", "160MiB",
  ]))] as const,
]

const removeHelpers = (graph: string) => {
  for (const id of fs.readdirSync(path.join(graph, "graph"))) {
    for (const name of [".migration-diffid", ".migration-size", ".migration-tardata"]) {
      fs.rmSync(path.join(graph, "graph", id, name), { force: true })
    }
  }
}

/** One `checksums` pass in this process (workers are threads, so resource usage covers them). */
const measure = async (graph: string, lanes: boolean) => {
  removeHelpers(graph)
  let bytes = 0
  const pool = new HashPool({ workers: jobs, lanes, onProgress: (n) => (bytes += n) })
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  const driver = builtinDrivers[values.driver!]!(graph, new Map())
  const report = await Effect.runPromise(
    checksums({ root: graph, pool, concurrency: jobs * 2 }).pipe(
      Effect.provide(driver),
      Effect.provideService(References.MinimumLogLevel, "Error"),
    ),
  )
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  pool.close()
  const failed = report.layers.filter((layer) => layer.status !== "done").length
  if (failed > 0) throw new Error(`${failed} layers failed`)
  return { bytes, seconds, cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100 }
}

/** Native SHA-256 on all cores at once, in workers, for about two seconds. */
const shaCeiling = async (): Promise<number> => {
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
  const file = path.join(os.tmpdir(), `cas-migrator-sha-ceiling-${process.pid}.ts`)
  fs.writeFileSync(file, source)
  const rates = await Promise.all(Array.from({ length: os.availableParallelism() }, () =>
    new Promise<number>((resolve) => {
      const worker = new Worker(new URL(`file://${file}`).href, { type: "module" })
      worker.onmessage = (event: MessageEvent<number>) => {
        worker.terminate()
        resolve(event.data)
      }
      worker.postMessage(0)
    })))
  fs.rmSync(file)
  return rates.reduce((a, b) => a + b, 0)
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : `bun ${process.versions.bun}`
process.stderr.write(`${jobs} jobs, ${runtime}, ${os.availableParallelism()} x ${os.cpus()[0]?.model}\n`)
const line = (label: string, run: { bytes: number; seconds: number; cpuPercent: number }) =>
  `${label.padEnd(62)} ${(run.bytes / MB).toFixed(0).padStart(5)} MB ${run.seconds.toFixed(2).padStart(6)} s ` +
  `${(run.bytes / MB / run.seconds).toFixed(0).padStart(5)} MB/s  CPU ${run.cpuPercent.toFixed(0).padStart(3)}%`
let best = 0
for (const [label, graph] of graphs) {
  await measure(graph, true) // warms the page cache
  const withLanes = await measure(graph, true)
  const withoutLanes = await measure(graph, false)
  console.log(line(`${label}, CRC lanes`, withLanes))
  console.log(line(`${label}, no lanes`, withoutLanes))
  best = Math.max(best, withLanes.bytes / withLanes.seconds)
  if (label.startsWith("mixed") || values.graph !== undefined) {
    const ceiling = await shaCeiling()
    console.log(`native SHA-256 ceiling, ${os.availableParallelism()} cores: ${(ceiling / MB).toFixed(0)} MB/s; ` +
      `checksums (CRC lanes) = ${((withLanes.bytes / withLanes.seconds / ceiling) * 100).toFixed(0)}% of it`)
  }
}
console.log(`peak RSS of this process (workers included): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`)
void best
