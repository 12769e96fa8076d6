/**
 * Builds the standalone executables with `bun build --compile`:
 * `dist/cas-migrator` (linux-x64, glibc) and `dist/cas-migrator-musl`
 * (linux-x64, musl). The worker entry points are compiled in as extra
 * entry points, so the binary needs nothing beside it. With the glibc one
 * comes `dist/cas-migrator-image.tar`, cas-migrator as a container image
 * (scripts/container-image.ts).
 *
 *   bun build.ts [--only glibc|musl] [--outdir DIR]
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { writeContainerImage } from "./scripts/container-image.ts"

const root = path.dirname(new URL(import.meta.url).pathname)
const entryPoints = ["src/cli/main.ts", "src/hash/HashWorker.ts", "src/hash/CrcLaneWorker.ts"]
const targets = [
  { name: "glibc", target: "bun-linux-x64", file: "cas-migrator" },
  { name: "musl", target: "bun-linux-x64-musl", file: "cas-migrator-musl" },
] as const

const option = (flag: string) => process.argv.includes(flag) ? process.argv[process.argv.indexOf(flag) + 1] : undefined
const only = option("--only")
const outdir = path.resolve(option("--outdir") ?? path.join(root, "dist"))
fs.mkdirSync(outdir, { recursive: true })
for (const { name, target, file } of targets) {
  if (only !== undefined && only !== name) continue
  const outfile = path.join(outdir, file)
  const result = spawnSync(
    process.execPath,
    ["build", "--compile", "--minify", `--target=${target}`, ...entryPoints, "--outfile", outfile],
    { cwd: root, stdio: "inherit" },
  )
  if (result.status !== 0) {
    process.stderr.write(`Cannot build ${outfile} (${target}): bun exited with ${result.status}\n`)
    process.exit(1)
  }
  process.stderr.write(`built ${outfile} (${target}, ${(fs.statSync(outfile).size / 1e6).toFixed(0)} MB)\n`)
  if (name === "glibc") {
    // cas-migrator as a container image (docker load -i dist/cas-migrator-image.tar).
    const image = path.join(outdir, "cas-migrator-image.tar")
    const id = writeContainerImage(outfile, image)
    process.stderr.write(`built ${image} (cas-migrator:latest, ${id})\n`)
  }
}
