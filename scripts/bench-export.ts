/**
 * Benchmark of `export` beside `checksums` on the same warm graph, through
 * the CLI, in one run: wall time of each, their ratio (the target: export to
 * a file at most 1.5x checksums), and peak RSS of each (the target: export
 * <= 256 MB with a 1 GB layer). The graph (built once in $TMPDIR) has a single
 * layer of about 1 GB: small files and two 256 MiB files.
 *
 *   bun scripts/bench-export.ts [--cli "dist/cas-migrator"] [--rounds 3]
 *
 * Without --cli it runs the CLI from source on this runtime. Peak RSS is read
 * with GNU time (`/usr/bin/time`, Debian's `time`).
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { timedRun } from "./timed-run.ts"

const { values } = parseArgs({ options: { cli: { type: "string" }, rounds: { type: "string", default: "3" } } })
const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))
const cli = values.cli !== undefined ? values.cli.split(" ") : [process.execPath, path.join(repo, "src/cli/main.ts")]

const graph = path.join(os.tmpdir(), "cas-migrator-bench-export")
if (!fs.existsSync(path.join(graph, "graph"))) {
  fs.rmSync(graph, { recursive: true, force: true })
  process.stderr.write(`building ${graph} ...\n`)
  const made = spawnSync(process.execPath, [
    path.join(repo, "scripts/make-graph.ts"), "--out", graph, "--driver", "aufs", "--seed", "11",
    "--size", "1024MiB", "--layers", "1", "--big-files", "2", "--big-size", "256MiB",
  ], { stdio: ["ignore", "ignore", "inherit"] })
  if (made.status !== 0) process.exit(2)
}
if (!fs.existsSync("/usr/bin/time")) {
  process.stderr.write("needs GNU time (/usr/bin/time; Debian: apt-get install time)\n")
  process.exit(2)
}

const removeHelpers = () => {
  for (const id of fs.readdirSync(path.join(graph, "graph"))) {
    for (const file of [".migration-diffid", ".migration-size", ".migration-tardata"]) fs.rmSync(path.join(graph, "graph", id, file), { force: true })
  }
}

const measure = (args: Array<string>) => timedRun(cli, args)

const bytes = fs.readdirSync(path.join(graph, "graph")).reduce((sum, id) => {
  const size = path.join(graph, "graph", id, "layersize")
  return sum + (fs.existsSync(size) ? Number(fs.readFileSync(size, "utf8")) : 0)
}, 0)
const output = path.join(os.tmpdir(), `cas-migrator-bench-export-${process.pid}.tar`)
removeHelpers()
measure(["checksums", "--graph", graph]) // warm the page cache
process.stdout.write(`graph: one layer, ${(bytes / 1e6).toFixed(0)} MB of files; CLI: ${cli.join(" ")}\n`)
for (let round = 1; round <= Number(values.rounds); round++) {
  removeHelpers()
  const checksums = measure(["checksums", "--graph", graph])
  removeHelpers()
  fs.rmSync(output, { force: true })
  const exported = measure(["export", "--graph", graph, "--output", output])
  fs.rmSync(output, { force: true })
  process.stdout.write(
    `round ${round}: checksums ${checksums.seconds.toFixed(2)} s (${checksums.rssMb.toFixed(0)} MB RSS), ` +
      `export ${exported.seconds.toFixed(2)} s (${exported.rssMb.toFixed(0)} MB RSS): export/checksums = ${(exported.seconds / checksums.seconds).toFixed(2)}x\n`,
  )
}
