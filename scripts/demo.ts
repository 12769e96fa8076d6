/**
 * The README's demo: builds a sample legacy graph (overlay, 4 layers, 64 MiB)
 * in a temporary directory and runs `checksums` on it, printing the result.
 *
 *   bun scripts/demo.ts        (npm run demo)
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

const repo = path.dirname(path.dirname(new URL(import.meta.url).pathname))
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cas-migrator-demo-"))
const root = path.join(work, "docker")
const run = (args: Array<string>) => {
  process.stderr.write(`\n$ bun ${args.join(" ")}\n`)
  return spawnSync(process.execPath, args, { cwd: repo, stdio: "inherit" }).status
}
if (run(["scripts/make-graph.ts", "--out", root, "--driver", "overlay", "--size", "64MiB", "--layers", "4", "--big-files", "1", "--big-size", "16MiB"]) !== 0) {
  process.exit(2)
}
const code = run(["src/cli/main.ts", "checksums", "--graph", root, "--json"])
process.stderr.write(`\nexit code ${code}; the graph is in ${root}: ls ${root}/graph/*/.migration-diffid\n`)
process.exit(code ?? 1)
