/**
 * Benchmark of `migrate` and `plan` on pure metadata, through the CLI: 10,000
 * pre-checksummed images (500 chains of 20, see make-metadata-graph.ts) and
 * one chain 1,000 deep. Each round migrates a fresh copy of the graph (built
 * once in $TMPDIR), made on a new loop-mounted ext4 when run as root (see
 * fresh-ext4.ts); `plan` runs on the copy before it is migrated. The
 * targets: migrate of 10,000 images <= 5 s, plan in seconds.
 *
 *   bun scripts/bench-metadata.ts [--cli "dist/cas-migrator"] [--rounds 3]
 *
 * Without --cli it runs the CLI from source on this runtime.
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
import { makeMetadataGraph } from "./make-metadata-graph.ts"

const { values } = parseArgs({ options: { cli: { type: "string" }, rounds: { type: "string", default: "3" } } })
const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))
const cli = values.cli !== undefined ? values.cli.split(" ") : [process.execPath, path.join(repo, "src/cli/main.ts")]
const rounds = Math.max(1, Number(values.rounds))

const cases = [
  { name: "10,000 images (500 chains of 20)", dir: "cas-migrator-bench-metadata-10000", chains: 500, depth: 20 },
  { name: "one chain 1,000 deep", dir: "cas-migrator-bench-metadata-deep", chains: 1, depth: 1000 },
]

/** Runs the CLI; seconds, or exits on failure. */
const timed = (args: Array<string>): number => {
  const started = performance.now()
  const run = spawnSync(cli[0]!, [...cli.slice(1), ...args], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" })
  const seconds = (performance.now() - started) / 1000
  if (run.status !== 0) {
    process.stderr.write(`${args.join(" ")} failed (exit ${run.status}): ${run.stderr.slice(-500)}\n`)
    process.exit(1)
  }
  return seconds
}

const copy = (from: string, to: string) => {
  fs.rmSync(to, { recursive: true, force: true })
  const made = spawnSync("cp", ["-a", from, to])
  if (made.status !== 0) throw new Error(`Cannot copy ${from}: ${made.stderr}`)
}

// Each round's copy on a new ext4 when this machine can make one (see fresh-ext4.ts).
const fresh = canMakeFreshExt4()
if (!fresh) process.stderr.write("not root or no mkfs.ext4: each round copies beside the last one removed, which ext4 makes slower\n")

const range = (xs: Array<number>) =>
  `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)} s (${xs.map((x) => x.toFixed(2)).join(", ")})`

for (const c of cases) {
  const template = path.join(os.tmpdir(), c.dir)
  if (!fs.existsSync(path.join(template, "repositories-vfs"))) {
    fs.rmSync(template, { recursive: true, force: true })
    process.stderr.write(`building ${template} ...\n`)
    makeMetadataGraph({ out: template, chains: c.chains, depth: c.depth, seed: 1 })
  }
  const plans: Array<number> = []
  const migrates: Array<number> = []
  const round = (work: string) => {
    copy(template, work)
    // The copy's pages are dirty: write them back so migrate's syncs do not pay for them.
    spawnSync("sync")
    plans.push(timed(["plan", "--graph", work]))
    migrates.push(timed(["migrate", "--graph", work]))
  }
  for (let i = 0; i < rounds; i++) {
    if (fresh) onFreshExt4("8G", (mountpoint) => round(path.join(mountpoint, "docker")))
    else {
      const work = `${template}-run-${process.pid}`
      try {
        round(work)
      } finally {
        fs.rmSync(work, { recursive: true, force: true })
      }
    }
  }
  process.stdout.write(`${c.name}: migrate ${range(migrates)}; plan ${range(plans)}\n`)
}
