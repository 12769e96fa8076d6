/**
 * Benchmark of `checksums` (the tar-split path) on a generated legacy graph of
 * at least 1 GiB: thousands of small files and some files of 100+ MB. Prints,
 * measured in this one run: MB/s, CPU %, peak RSS, the machine's native
 * SHA-256 ceiling on all cores, and our rate as a fraction of it.
 *
 *   bun scripts/bench.ts [--graph DIR] [--jobs N]      (npm run bench)
 *
 * Without --graph it builds (once) an aufs graph in $TMPDIR/cas-migrator-bench.
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

const graph = values.graph ?? path.join(os.tmpdir(), "cas-migrator-bench")
if (values.graph === undefined && !fs.existsSync(path.join(graph, "graph"))) {
  fs.rmSync(graph, { recursive: true, force: true })
  process.stderr.write(`building a 1.3 GB ${values.driver} graph in ${graph} ...\n`)
  const made = spawnSync(process.execPath, [
    path.join(repo, "scripts/make-graph.ts"), "--out", graph, "--driver", values.driver!,
    "--size", "1280MiB", "--layers", "6", "--big-files", "4", "--big-size", "160MiB", "--seed", "7",
  ], { stdio: ["ignore", "ignore", "inherit"] })
  if (made.status !== 0) process.exit(2)
}

const removeHelpers = () => {
  for (const id of fs.readdirSync(path.join(graph, "graph"))) {
    for (const name of [".migration-diffid", ".migration-size", ".migration-tardata"]) {
      fs.rmSync(path.join(graph, "graph", id, name), { force: true })
    }
  }
}

/** One `checksums` pass in this process (workers are threads, so resource usage covers them). */
const measure = async () => {
  removeHelpers()
  let bytes = 0
  const pool = new HashPool({ workers: jobs, lanes: true, onProgress: (n) => (bytes += n) })
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  const driver = builtinDrivers[values.driver!]!(graph)
  const report = await Effect.runPromise(
    checksums({ root: graph, pool, concurrency: jobs * 2 }).pipe(
      Effect.provide(driver),
      Effect.provideService(References.MinimumLogLevel, "Warn"),
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
const totalBytes = fs.readdirSync(path.join(graph, "graph")).length
process.stderr.write(`graph ${graph} (${totalBytes} layers), ${jobs} jobs, ${runtime}, ${os.cpus()[0]?.model}\n`)
const cold = await measure()
const warm = await measure()
const ceiling = await shaCeiling()
const rssMB = process.resourceUsage().maxRSS / 1024
const line = (label: string, run: { bytes: number; seconds: number; cpuPercent: number }) =>
  `${label}: ${(run.bytes / MB).toFixed(0)} MB in ${run.seconds.toFixed(2)} s = ${(run.bytes / MB / run.seconds).toFixed(0)} MB/s, ` +
  `CPU ${run.cpuPercent.toFixed(0)}% (of ${os.availableParallelism() * 100}%)`
console.log(line("checksums run 1", cold))
console.log(line("checksums run 2", warm))
console.log(`native SHA-256 ceiling, ${os.availableParallelism()} cores: ${(ceiling / MB).toFixed(0)} MB/s`)
console.log(`checksums / ceiling: ${((warm.bytes / warm.seconds / ceiling) * 100).toFixed(0)}%`)
console.log(`peak RSS of this process (workers included): ${rssMB.toFixed(0)} MB`)
