/**
 * A disk that fills up during `migrate`: the run stops or fails items with a
 * clear error, `--json` still prints its summary, the tags are not marked
 * done, and a re-run after space is freed ends with the files of a clean run.
 * And a read-only root: refused with a JSON summary, nothing written.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { isRoot, makeGraph, runCli, sh, tempDir } from "./support/cli.ts"

const SKIP = isRoot ? false : "needs root (mounts a small tmpfs as the Docker root)"
if (SKIP !== false) console.warn(`\n*** disk-full tests NOT RUN: ${SKIP} ***\n`)

/** What migrate wrote: the store, the markers and containers' configs, by path, with mode and content hash. */
const written = (root: string): Map<string, string> => {
  const out = new Map<string, string>()
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name)
      const key = path.join(rel, name)
      if (name === ".cas-migrator.lock") continue
      const stat = fs.lstatSync(full)
      if (stat.isDirectory()) {
        out.set(key + "/", (stat.mode & 0o7777).toString(8))
        walk(full, key)
      } else {
        out.set(key, `${(stat.mode & 0o7777).toString(8)} ${createHash("sha256").update(fs.readFileSync(full)).digest("hex")}`)
      }
    }
  }
  walk(path.join(root, "image"), "image")
  for (const marker of [".migration-v1-images.json", ".migration-v1-tags"]) {
    if (fs.existsSync(path.join(root, marker))) out.set(marker, createHash("sha256").update(fs.readFileSync(path.join(root, marker))).digest("hex"))
  }
  for (const id of fs.readdirSync(path.join(root, "containers"))) {
    const v2 = path.join(root, "containers", id, "config.v2.json")
    if (fs.existsSync(v2)) out.set(`containers/${id}/config.v2.json`, createHash("sha256").update(fs.readFileSync(v2)).digest("hex"))
  }
  for (const id of fs.readdirSync(path.join(root, "graph"))) {
    for (const helper of [".migration-diffid", ".migration-size", ".migration-tardata"]) {
      const file = path.join(root, "graph", id, helper)
      if (fs.existsSync(file)) out.set(`graph/${id}/${helper}`, createHash("sha256").update(fs.readFileSync(file)).digest("hex"))
    }
  }
  return out
}

/** A legacy graph with tags and a container, made in `root`. */
const makeSample = (root: string) => {
  const { layers } = makeGraph(root, "vfs", ["--size", "512KiB", "--layers", "4"])
  const top = layers[layers.length - 1]!.id
  const container = createHash("sha256").update("disk-full container").digest("hex")
  fs.mkdirSync(path.join(root, "containers", container), { recursive: true })
  fs.writeFileSync(path.join(root, "containers", container, "config.json"), JSON.stringify({ ID: container, Image: top, State: {} }))
  return top
}

/** Fills the file system but `spareKiB`; the filler is removed to free the space. */
const fill = (dir: string, spareKiB: number) => {
  spawnSync("sh", ["-c", `dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null; dd if=/dev/zero of="$1/filler2" bs=4k 2>/dev/null; true`, "sh", dir])
  const filler = path.join(dir, "filler")
  fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - spareKiB * 1024))
}

for (const spareKiB of [8, 40, 120]) {
  test(`a disk full during migrate (${spareKiB} KiB spare): JSON summary, no tags marked done, and after space is freed the re-run gives the clean run's files`, { skip: SKIP }, () => {
    const base = tempDir("disk-full")
    const clean = path.join(base, "clean", "docker")
    makeSample(clean)
    const mountPoint = path.join(base, "small")
    fs.mkdirSync(mountPoint)
    sh(`mount -t tmpfs -o size=24m tmpfs "$1"`, mountPoint)
    try {
      const root = path.join(mountPoint, "docker")
      sh(`cp -a "$1" "$2"`, clean, root)
      const cleanRun = runCli(["migrate", "--graph", clean, "--json"])
      assert.equal(cleanRun.code, 0, cleanRun.stderr)

      fill(mountPoint, spareKiB)
      const full = runCli(["migrate", "--graph", root, "--json"])
      assert.ok(full.code === 1 || full.code === 2, `exit ${full.code}: ${full.stderr}`)
      const summary = JSON.parse(full.stdout) as { readonly exitCode: number; readonly fatal: string | null }
      assert.equal(summary.exitCode, full.code)
      console.log(`disk full with ${spareKiB} KiB spare: exit ${full.code}, ${summary.fatal ?? "no fatal"}`)
      assert.match(full.stdout + full.stderr, /ENOSPC|no space left/i)
      assert.doesNotMatch(full.stderr, /^\s+at .+:\d+:\d+\)?$/m, "a stack trace")
      assert.equal(fs.existsSync(path.join(root, ".migration-v1-tags")), false, "tags marked done while items failed on a full disk")

      fs.rmSync(path.join(mountPoint, "filler"), { force: true })
      fs.rmSync(path.join(mountPoint, "filler2"), { force: true })
      const rerun = runCli(["migrate", "--graph", root, "--json"])
      assert.equal(rerun.code, 0, rerun.stderr)
      const want = written(clean)
      const got = written(root)
      const differ = [...new Set([...want.keys(), ...got.keys()])].filter((key) => want.get(key) !== got.get(key))
      assert.deepEqual(differ, [])
      assert.deepEqual([...fs.readdirSync(root)].filter((name) => name.startsWith(".tmp-")), [])
    } finally {
      spawnSync("umount", [mountPoint])
    }
  })
}

test("a read-only Docker root: migrate refuses with a JSON summary naming the cause, checksums fails its layers, nothing written", { skip: SKIP }, () => {
  const base = tempDir("read-only")
  const root = path.join(base, "docker")
  makeSample(root)
  sh(`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"`, root)
  try {
    for (const command of ["migrate", "checksums"]) {
      const run = runCli([command, "--graph", root, "--json"])
      assert.ok(run.code === 1 || run.code === 2, `${command}: exit ${run.code}\n${run.stderr}`)
      const summary = JSON.parse(run.stdout) as { readonly exitCode: number }
      assert.equal(summary.exitCode, run.code)
      assert.match(run.stdout + run.stderr, /EROFS|read-only/i)
      assert.doesNotMatch(run.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${command}: a stack trace`)
    }
  } finally {
    spawnSync("umount", [root])
  }
  assert.equal(fs.existsSync(path.join(root, "image")), false)
})
