/**
 * A layer worker that cannot run (here: its entry file is gone, as when a
 * build misplaces it) fails the layers it would have hashed, named, and the
 * run ends: it never waits forever for a worker that is not there.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { extractGolden, repo, tempDir } from "./support/cli.ts"

const deno = (globalThis as { readonly Deno?: { execPath(): string } }).Deno

test("checksums without a loadable layer worker: every layer fails naming the worker, exit 1, no hang", () => {
  const copy = tempDir("worker-crash")
  const graph = extractGolden("vfs")
  try {
    for (const entry of ["src", "plugins", "test/conformance", "mod.ts", "package.json", "deno.json"]) {
      fs.cpSync(path.join(repo, entry), path.join(copy, entry), { recursive: true })
    }
    fs.symlinkSync(path.join(repo, "node_modules"), path.join(copy, "node_modules"))
    fs.rmSync(path.join(copy, "src/hash/HashWorker.ts"))
    const main = path.join(copy, "src/cli/main.ts")
    const [command, argv] = deno !== undefined
      ? [deno.execPath(), ["run", "-A", main]]
      : [process.execPath, [main]]
    const run = spawnSync(command, [...argv, "checksums", "--graph", graph, "--json"], {
      encoding: "utf8",
      timeout: 60_000, // a clean run takes about a second; under the runner's own 120 s
      maxBuffer: 64 << 20,
    })
    assert.equal(run.signal, null, `the run hung and was stopped after 60 s; stderr: ${run.stderr.slice(-2000)}`)
    assert.equal(run.status, 1, run.stderr.slice(-2000))
    const report = JSON.parse(run.stdout) as { layers: Array<{ status: string; path?: string; error?: string }> }
    // Layers whose helper files the golden ships are done without a worker; every other one fails, naming why.
    const failed = report.layers.filter((layer) => layer.status === "failed")
    assert.ok(failed.length > 0, run.stdout)
    for (const layer of failed) assert.match(layer.error ?? "", /worker/, JSON.stringify(layer))
    for (const layer of report.layers.filter((layer) => layer.status !== "failed")) assert.equal(layer.path, "preexisting", JSON.stringify(layer))
  } finally {
    fs.rmSync(copy, { recursive: true, force: true })
    fs.rmSync(graph, { recursive: true, force: true })
  }
})
