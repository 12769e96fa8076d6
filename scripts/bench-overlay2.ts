/**
 * Benchmark of `migrate --target-driver overlay2` beside `checksums` on the
 * same warm graph, through the CLI, in one run: wall time of each, their
 * ratio (the target: at most 3x checksums on a warm 1 GB graph on ext4) and
 * peak RSS. The graph (built once in $TMPDIR: vfs, 4 layers, 1 GiB of tar) is
 * only read by both but for its helper files, removed before each run.
 *
 * Each conversion goes into a freshly made, loop-mounted ext4 (`--target-root`,
 * see fresh-ext4.ts). Needs root, `mkfs.ext4` and GNU time.
 *
 *   bun scripts/bench-overlay2.ts [--cli "dist/cas-migrator"] [--rounds 3]
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { canMakeFreshExt4, onFreshExt4 } from "./fresh-ext4.ts"
import { timedRun } from "./timed-run.ts"

const { values } = parseArgs({ options: { cli: { type: "string" }, rounds: { type: "string", default: "3" } } })
const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))
const cli = values.cli !== undefined ? values.cli.split(" ") : [process.execPath, path.join(repo, "src/cli/main.ts")]

const need = (ok: boolean, what: string) => {
  if (ok) return
  process.stderr.write(`bench-overlay2: needs ${what}\n`)
  process.exit(2)
}
need(canMakeFreshExt4(), "root and mkfs.ext4 (a loop-mounted ext4 per run)")
need(fs.existsSync("/usr/bin/time"), "GNU time (/usr/bin/time; Debian: apt-get install time)")

const graph = path.join(os.tmpdir(), "cas-migrator-bench-overlay2")
if (!fs.existsSync(path.join(graph, "graph"))) {
  fs.rmSync(graph, { recursive: true, force: true })
  process.stderr.write(`building ${graph} ...\n`)
  const made = spawnSync(process.execPath, [
    path.join(repo, "scripts/make-graph.ts"), "--out", graph, "--driver", "vfs", "--size", "1GiB", "--layers", "4",
  ], { stdio: ["ignore", "ignore", "inherit"] })
  if (made.status !== 0) process.exit(2)
}

const measure = (args: Array<string>) => timedRun(cli, args)

/** Back to the legacy graph as built: what `checksums` and `migrate` wrote in it removed. */
const rollback = () => {
  const run = spawnSync(cli[0]!, [...cli.slice(1), "rollback", "--graph", graph, "--checksums", "--force"], { stdio: "ignore" })
  if (run.status !== 0) process.exit(1)
}

try {
  rollback()
  measure(["checksums", "--graph", graph]) // warm the page cache
  const bytes = fs.readdirSync(path.join(graph, "graph")).reduce((sum, id) => {
    const size = path.join(graph, "graph", id, ".migration-size")
    return sum + (fs.existsSync(size) ? Number(fs.readFileSync(size, "utf8")) : 0)
  }, 0)
  process.stdout.write(`graph: vfs, 4 layers, ${(bytes / 1e6).toFixed(0)} MB of files; CLI: ${cli.join(" ")}\n`)
  for (let round = 1; round <= Number(values.rounds); round++) {
    rollback()
    spawnSync("sync")
    const checksums = measure(["checksums", "--graph", graph])
    rollback()
    const converted = onFreshExt4("4G", (mountpoint) => {
      spawnSync("sync")
      return measure(["migrate", "--graph", graph, "--target-driver", "overlay2", "--target-root", mountpoint])
    })
    rollback()
    process.stdout.write(
      `round ${round}: checksums ${checksums.seconds.toFixed(2)} s (${checksums.rssMb.toFixed(0)} MB RSS), ` +
        `migrate --target-driver overlay2 ${converted.seconds.toFixed(2)} s (${converted.rssMb.toFixed(0)} MB RSS): ` +
        `overlay2/checksums = ${(converted.seconds / checksums.seconds).toFixed(2)}x\n`,
    )
  }
} finally {
  rollback()
}
