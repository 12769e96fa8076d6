/**
 * Graphs broken on purpose (scripts/make-hostile-graph.ts), each run through
 * `plan`, `export`, `checksums`, `migrate` (to its own driver, then to
 * overlay2 in another root), `verify` and `rollback --checksums`, all with
 * `--json`: no hang, no stack trace, the documented exit code (plan's the same as migrate's), a JSON summary on stdout even when the run stops
 * early, the broken item named, peak RSS <= 1 GiB, layer data unchanged, and
 * after the rollback the root exactly as it was and the target root empty.
 */
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { HOSTILE_KINDS } from "../scripts/make-hostile-graph.ts"
import { changedPaths, cliCommand, isRoot, makeGraph, snapshot, tempDir } from "./support/cli.ts"

const GiB = 1 << 30

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly peakRssBytes: number
  readonly timedOut: boolean
}

/** Runs the CLI, polling its peak RSS (VmHWM), killing it after `seconds`. */
const runWatched = (args: ReadonlyArray<string>, seconds = 120): Promise<Run> =>
  new Promise((resolve) => {
    const [command, argv] = cliCommand(args)
    const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let peak = 0
    let timedOut = false
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const poll = setInterval(() => {
      try {
        const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))
        if (match !== null) peak = Math.max(peak, Number(match[1]) * 1024)
      } catch {
        // gone
      }
    }, 25)
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, seconds * 1000)
    child.on("close", (code) => {
      clearInterval(poll)
      clearTimeout(timer)
      resolve({ code, stdout, stderr, peakRssBytes: peak, timedOut })
    })
  })

/** Exit codes allowed per command (0 done, 1 some items failed or the run stopped, 2 unusable root), and how the broken item shows. */
const CASES: Record<string, { readonly checksums: number; readonly migrate: number; readonly overlay2?: number; readonly names?: RegExp }> = {
  "fifo-json": { checksums: 1, migrate: 1, names: /json: is a FIFO/ },
  "fifo-parent": { checksums: 1, migrate: 1, names: /parent: is a FIFO/ },
  "fifo-tar-data": { checksums: 0, migrate: 0, names: /tar-data\.json\.gz: is a FIFO/ },
  "fifo-layersize": { checksums: 0, migrate: 0 },
  "fifo-docker-pid": { checksums: 0, migrate: 0 },
  "fifo-container-config": { checksums: 0, migrate: 0, names: /config\.json: is a FIFO/ },
  "fifo-repositories": { checksums: 0, migrate: 1, names: /repositories-vfs: is a FIFO/ },
  "dev-zero-json": { checksums: 1, migrate: 1, names: /json: is a character device/ },
  "dev-zero-diffid": { checksums: 1, migrate: 1, names: /\.migration-diffid: is a character device/ },
  "dev-zero-checksum": { checksums: 0, migrate: 0 },
  "huge-json": { checksums: 1, migrate: 1, names: /json: is 104857600 bytes, over the/ },
  "huge-container-config": { checksums: 0, migrate: 0, names: /config\.json: is 209715200 bytes, over the/ },
  "huge-tar-split-line": { checksums: 0, migrate: 0, names: /an entry longer than 64 MiB|gzip bomb/ },
  "gzip-bomb": { checksums: 0, migrate: 0, names: /an entry longer than|gzip bomb/ },
  "gzip-bomb-lines": { checksums: 0, migrate: 0, names: /gzip bomb/ },
  "truncated-gzip": { checksums: 0, migrate: 0, names: /unexpected end of file|Unexpected end/i },
  "million-tiny-entries": { checksums: 0, migrate: 0 },
  "deep-json-image": { checksums: 0, migrate: 0 },
  "deep-json-container": { checksums: 0, migrate: 0 },
  "invalid-utf8-json": { checksums: 0, migrate: 0 },
  "json-null": { checksums: 0, migrate: 0 },
  "json-array": { checksums: 1, migrate: 1, names: /cannot unmarshal array/ },
  "json-empty": { checksums: 1, migrate: 1, names: /JSON/ },
  "json-mismatched-id": { checksums: 0, migrate: 0 },
  "parent-cycle": { checksums: 0, migrate: 1, names: /parent cycle/ },
  "self-parent": { checksums: 0, migrate: 1, names: /parent cycle/ },
  "missing-parent": { checksums: 0, migrate: 1, names: /json: no such file or directory/ },
  "deep-chain": { checksums: 0, migrate: 1, names: /image chain deeper than 1024 layers/ },
  "repositories-array": { checksums: 0, migrate: 1, names: /repositories-vfs: json: cannot unmarshal array into Go value of type map\[string\]string/ },
  "repositories-not-json": { checksums: 0, migrate: 1, names: /repositories-vfs: invalid character/ },
  "symlinked-layer-dir": { checksums: 0, migrate: 0, names: /is a symlink to .*moved-to-another-disk.*: followed, as Docker did/ },
  "tar-split-absolute-name": { checksums: 0, migrate: 0, names: /\/etc\/shadow: directory etc does not exist/ }, // joined to the layer root, as Go did
  "tar-split-dotdot-name": { checksums: 0, migrate: 0, names: /UnsafePath|leads out|outside/ },
  "symlink-out-of-layer": { checksums: 0, migrate: 0, names: /leads-out/ },
  "fifo-as-layer-file": { checksums: 0, migrate: 0, names: /not a regular file/ },
  "device-as-layer-file": { checksums: 0, migrate: 0, names: /not a regular file/ },
  "odd-names-fallback": { checksums: 0, migrate: 0 },
  "tar-split-payload-not-base64": { checksums: 0, migrate: 0, names: /illegal base64 data in field payload\. Attempting fallback/ },
  "tar-split-crc-mismatch": { checksums: 0, migrate: 0, names: /file integrity checksum failed for .*Attempting fallback/ },
  "tar-split-size-out-of-range": { checksums: 0, migrate: 0, names: /cannot unmarshal number 1e\+30 into field size .*Attempting fallback/ },
  // Assembled in the order given, as Go's tar-split did: hashed as Docker hashed it, but not a tar overlay2 can unpack.
  "tar-split-entries-out-of-order": { checksums: 0, migrate: 0, overlay2: 1, names: /\.migration-tardata: tar header checksum mismatch/ },
  "json-number-out-of-range": { checksums: 0, migrate: 1, names: /cannot unmarshal number into Go value of type int64 \(field Size\)/ },
  "container-not-json": { checksums: 0, migrate: 0, names: /migrate container error/ },
  "container-image-number": { checksums: 0, migrate: 0, names: /Image is not a string/ },
}

test("every hostile kind the generator makes has an expectation here", () => {
  assert.deepEqual(Object.keys(HOSTILE_KINDS).sort(), Object.keys(CASES).sort())
})

const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m

for (const [kind, expected] of Object.entries(CASES)) {
  test(`hostile graph ${kind}: plan and export, checksums exits ${expected.checksums}, migrate ${expected.migrate} (to vfs and to overlay2), then verify and rollback, all with JSON, no hang, no stack trace, RSS <= 1 GiB, layer data unchanged`, { skip: isRoot ? false : "needs root (mkfifo under a Docker root we own is fine, but the goldens' owners need root)" }, async () => {
    const root = path.join(tempDir(`hostile-${kind}`), "docker")
    const layers = makeGraph(root, "vfs", ["--size", "256KiB", "--layers", "3"])
    await HOSTILE_KINDS[kind]!(root, { driver: "vfs", layers: layers.layers })
    const before = snapshot(path.join(root, "vfs"))
    const rootBefore = snapshot(root)
    const outputs: Array<string> = []
    // plan and export first, on the untouched graph: they only read it.
    const checked = async (label: string, args: Array<string>) => {
      const run = await runWatched(args)
      assert.equal(run.timedOut, false, `${label}: hung (killed after 120 s)`)
      assert.doesNotMatch(run.stderr, STACK_TRACE, `${label}: a stack trace on stderr`)
      const summary = JSON.parse(run.stdout) as { readonly exitCode: number }
      assert.equal(summary.exitCode, run.code, `${label}: the JSON's exitCode`)
      assert.ok(run.peakRssBytes <= GiB, `${label}: peak RSS ${run.peakRssBytes} bytes`)
      return run
    }
    const planned = await checked(`${kind} plan`, ["plan", "--graph", root, "--json"])
    assert.equal(planned.code, expected.migrate, `${kind} plan: exit ${planned.code}, but migrate exits ${expected.migrate}\n${planned.stderr.slice(-2000)}`)
    const exported = await checked(`${kind} export`, ["export", "--graph", root, "--output", path.join(path.dirname(root), "export.tar"), "--json"])
    assert.ok(exported.code === 0 || exported.code === 1, `${kind} export: exit ${exported.code}\n${exported.stderr.slice(-2000)}`)
    for (const command of ["checksums", "migrate"] as const) {
      const run = await runWatched([command, "--graph", root, "--json"])
      const label = `${kind} ${command}`
      assert.equal(run.timedOut, false, `${label}: hung (killed after 120 s)`)
      assert.doesNotMatch(run.stderr, STACK_TRACE, `${label}: a stack trace on stderr`)
      assert.equal(run.code, expected[command], `${label}: exit ${run.code}\n${run.stderr.slice(-2000)}`)
      const summary = JSON.parse(run.stdout) as { readonly exitCode: number }
      assert.equal(summary.exitCode, run.code, `${label}: the JSON's exitCode`)
      assert.ok(run.peakRssBytes <= GiB, `${label}: peak RSS ${run.peakRssBytes} bytes`)
      outputs.push(run.stdout, run.stderr)
    }
    // The store migrate left is checked, converted to overlay2 elsewhere, then rolled back: each reports in JSON.
    const verified = await checked(`${kind} verify`, ["verify", "--graph", root, "--json"])
    assert.ok(verified.code === 0 || verified.code === 1 || verified.code === 2, `${kind} verify: exit ${verified.code}\n${verified.stderr.slice(-2000)}`)
    const target = path.join(path.dirname(root), "overlay2-target")
    fs.mkdirSync(target)
    const converted = await checked(`${kind} migrate --target-driver overlay2`, ["migrate", "--graph", root, "--target-driver", "overlay2", "--target-root", target, "--json"])
    outputs.push(converted.stdout)
    assert.equal(converted.code, expected.overlay2 ?? expected.migrate, `${kind} migrate --target-driver overlay2: exit ${converted.code}\n${converted.stderr.slice(-2000)}`)
    if (expected.names !== undefined) assert.match(outputs.join("\n"), expected.names)
    const rolledBack = await checked(`${kind} rollback`, ["rollback", "--graph", root, "--checksums", "--json"])
    assert.equal(rolledBack.code, 0, `${kind} rollback: exit ${rolledBack.code}\n${rolledBack.stderr.slice(-2000)}`)
    assert.deepEqual(changedPaths(rootBefore, snapshot(root)), [], "rollback --checksums left the root changed")
    assert.deepEqual(fs.readdirSync(target), [], "rollback left files in the overlay2 target root")
    assert.deepEqual(changedPaths(before, snapshot(path.join(root, "vfs"))), [], "layer data changed")
  })
}
