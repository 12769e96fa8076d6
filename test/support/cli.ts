/**
 * Runs the CLI as a separate process on the runtime the tests run on, and
 * builds test graphs.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { Buffer } from "node:buffer"
import { compareBytes } from "../../src/Bytes.ts"
import { mountsUnder } from "../../src/platform/Mounts.ts"
import { rawFiles } from "../../src/platform/RawFiles.ts"

export const repo = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "../..")
const main = path.join(repo, "src/cli/main.ts")
const deno = (globalThis as { readonly Deno?: { execPath(): string } }).Deno

/** The command line that runs the CLI on this runtime. */
export const cliCommand = (args: ReadonlyArray<string>): [string, Array<string>] =>
  deno !== undefined ? [deno.execPath(), ["run", "-A", main, ...args]] : [process.execPath, [main, ...args]]

export interface CliResult {
  readonly code: number | null
  /** The CLI's process ID (Go's writer named PAX headers after it). */
  readonly pid: number
  readonly stdout: string
  readonly stderr: string
}

export const runCli = (args: ReadonlyArray<string>): CliResult => {
  const [command, argv] = cliCommand(args)
  const result = spawnSync(command, argv, { encoding: "utf8", maxBuffer: 64 << 20 })
  return { code: result.status, pid: result.pid, stdout: result.stdout, stderr: result.stderr }
}

/** Starts the CLI without waiting (for kill tests). */
export const startCli = (args: ReadonlyArray<string>): ChildProcess => {
  const [command, argv] = cliCommand(args)
  return spawn(command, argv, { stdio: "ignore" })
}

/** Starts the CLI and kills it with SIGKILL after `delayMs`; resolves once it is gone: `true` if it was killed before it finished. */
export const runKilledAfter = async (args: ReadonlyArray<string>, delayMs: number): Promise<boolean> => {
  const child = startCli(args)
  const killed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve(true)
    }, delayMs)
    child.on("exit", () => {
      clearTimeout(timer)
      resolve(false)
    })
  })
  await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on("exit", resolve)))
  return killed
}

/** Runs a bash script with arguments ($1, $2, ...); fails the test with its stderr if it fails. */
export const sh = (script: string, ...args: ReadonlyArray<string>): string => {
  const result = spawnSync("bash", ["-c", script, "bash", ...args], { encoding: "utf8" })
  if (result.status !== 0) throw new Error(`${script}: exit ${result.status}: ${result.stderr}`)
  return result.stdout
}

const madeDirs: Array<string> = []

/** A fresh directory, removed when the test process exits (unless something is still mounted in it). */
export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cas-migrator-${prefix}-`))
  madeDirs.push(dir)
  return dir
}

const removeMadeDirs = () => {
  for (const dir of madeDirs) {
    // Never delete through a mount a failed test left: say so instead.
    if (mountsUnder(dir).length > 0) process.stderr.write(`kept ${dir}: something is mounted in it\n`)
    else fs.rmSync(dir, { recursive: true, force: true })
  }
  madeDirs.length = 0
}
// Bun's test process exits; Deno's test isolates unload.
process.on("exit", removeMadeDirs)
globalThis.addEventListener?.("unload", removeMadeDirs)

/** Builds a graph with scripts/make-graph.ts; returns the expected layers. */
export const makeGraph = (out: string, driver: string, extra: ReadonlyArray<string> = []) => {
  const expect = `${out}.expect.json`
  const runtime = deno !== undefined ? [deno.execPath(), "run", "-A"] : [process.execPath]
  const result = spawnSync(
    runtime[0]!,
    [...runtime.slice(1), path.join(repo, "scripts/make-graph.ts"), "--out", out, "--driver", driver, "--expect", expect, ...extra],
    { encoding: "utf8" },
  )
  if (result.status !== 0) throw new Error(`make-graph failed: ${result.stderr}`)
  return JSON.parse(fs.readFileSync(expect, "utf8")) as {
    readonly layers: ReadonlyArray<{ readonly id: string; readonly parent?: string; readonly diffId: string; readonly size: number }>
  }
}

/** Every path under `root` (names as bytes, keyed latin1) with its type, mode, size, inode, mtime and content hash. */
export const snapshot = (root: string): Map<string, string> => {
  const out = new Map<string, string>()
  const walk = (dir: Uint8Array, relative: string) => {
    for (const name of rawFiles.readdir(dir).sort(compareBytes)) {
      const full = new Uint8Array(Buffer.concat([dir, Buffer.from("/"), name]))
      const key = relative + Buffer.from(name).toString("latin1")
      const stat = rawFiles.lstat(full)
      if (stat === undefined) continue
      let content = ""
      if (stat.kind === "file") {
        const hash = createHash("sha256")
        const handle = rawFiles.openNoFollow(full)
        const buffer = new Uint8Array(1 << 16)
        for (let n = handle.read(buffer, 0, buffer.length); n > 0; n = handle.read(buffer, 0, buffer.length)) {
          hash.update(buffer.subarray(0, n))
        }
        handle.close()
        content = hash.digest("hex")
      }
      if (stat.kind === "symlink") content = Buffer.from(rawFiles.readlink(full)).toString("latin1")
      const mtime = stat.kind === "directory" ? "" : String(stat.mtimeNs)
      out.set(key, `${stat.mode.toString(8)} ${stat.size} ${stat.ino} ${mtime} ${content}`)
      if (stat.kind === "directory") walk(full, key + "/")
    }
  }
  walk(new TextEncoder().encode(root), "")
  return out
}

/** Paths whose snapshot entry differs (added, removed or changed). */
export const changedPaths = (before: Map<string, string>, after: Map<string, string>): Array<string> => {
  const changed = new Set<string>()
  for (const [key, value] of before) if (after.get(key) !== value) changed.add(key)
  for (const key of after.keys()) if (!before.has(key)) changed.add(key)
  return [...changed].sort()
}

export const isRoot = process.getuid?.() === 0

/** Extracts a golden fixture as its README says (needs root for owners, devices and xattrs). */
export const extractGolden = (driver: string): string => {
  const root = tempDir(`golden-${driver}`)
  const fixture = path.join(repo, "test/goldens", driver, "fixture.tar.gz")
  const result = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf", fixture, "-C", root], {
    encoding: "utf8",
  })
  if (result.status !== 0) throw new Error(`Cannot extract ${fixture}: ${result.stderr}`)
  return root
}
