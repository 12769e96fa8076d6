/**
 * One run of the CLI under GNU time (`/usr/bin/time`, Debian's `time`), for
 * the benchmarks: its wall time and peak RSS. A failed run ends the benchmark.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

/** Runs `cli args`: seconds and peak RSS (MB). */
export const timedRun = (cli: ReadonlyArray<string>, args: ReadonlyArray<string>): { seconds: number; rssMb: number } => {
  const report = path.join(os.tmpdir(), `cas-migrator-bench-time-${process.pid}`)
  const started = performance.now()
  const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", report, ...cli, ...args], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" })
  const seconds = (performance.now() - started) / 1000
  if (run.status !== 0) {
    process.stderr.write(`${args[0]} failed (exit ${run.status}): ${run.stderr.slice(-500)}\n`)
    process.exit(1)
  }
  const rssMb = Number(fs.readFileSync(report, "utf8").trim().split("\n").pop()) / 1024
  fs.rmSync(report, { force: true })
  return { seconds, rssMb }
}
