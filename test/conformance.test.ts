/**
 * The conformance kit (test/conformance/) on every built-in driver (on its
 * golden, views compared with a copy of the layer directories taken before),
 * on zfs (views compared with the vfs trees it was made from), and on the
 * example plugin loaded through --plugin (from the CLI, as a user would).
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { builtinDrivers } from "../plugins/index.ts"
import type { GraphId } from "../src/Ids.ts"
import { runConformance } from "./conformance/StorageDriverConformance.ts"
import { extractGolden, isRoot, makeGraph, repo, runCli, tempDir } from "./support/cli.ts"

const NEEDS_ROOT = "needs root: the goldens hold device nodes and foreign owners"

const layerDirs: Record<string, (id: string) => string> = {
  aufs: (id) => `aufs/diff/${id}`,
  overlay: (id) => `overlay/${id}/root`,
  vfs: (id) => `vfs/dir/${id}`,
  btrfs: (id) => `btrfs/subvolumes/${id}`,
}

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  test(`conformance: the ${driver} plugin passes the kit on its golden`, { skip: isRoot ? false : NEEDS_ROOT }, async () => {
    const root = extractGolden(driver)
    const copies = tempDir(`reference-${driver}`)
    const reference = new Map<GraphId, string>()
    for (const id of fs.readdirSync(path.join(root, "graph")).filter((n) => /^[0-9a-f]{64}$/.test(n))) {
      const dir = path.join(root, layerDirs[driver]!(id))
      if (!fs.existsSync(dir)) continue
      const copy = path.join(copies, id)
      assert.equal(spawnSync("cp", ["-a", dir, copy]).status, 0)
      reference.set(id as GraphId, copy)
    }
    const results = await runConformance({
      driver: builtinDrivers[driver]!(root, new Map()),
      graphRoot: root,
      storage: path.join(root, driver),
      reference,
    })
    assert.deepEqual(results.filter((r) => !r.ok), [])
    assert.ok(results.filter((r) => r.check.startsWith("fallback tar")).length >= 10, "too few fallback comparisons")
  })
}

/** Whether a tree has a security.capability xattr or a sub-second mtime (what zfs-fuse cannot keep). */
const hasWhatZfsFuseLoses = (dir: string): boolean => {
  const found = spawnSync("python3", ["-c", `
import os, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for name in dirs + files:
        p = os.path.join(root, name)
        st = os.lstat(p)
        if st.st_mtime_ns % 1000000000 != 0: sys.exit(0)
        try:
            if 'security.capability' in os.listxattr(p, follow_symlinks=False): sys.exit(0)
        except OSError:
            pass
sys.exit(1)`, dir])
  return found.status === 0
}

const haveZfs = spawnSync("sh", ["-c", "command -v zfs-fuse && grep -q zfs-fuse /sbin/mount.zfs"]).status === 0

test("conformance: the zfs plugin passes the kit on ZFS datasets made from the vfs golden", { skip: !isRoot ? NEEDS_ROOT : !haveZfs ? "needs zfs-fuse (scripts/zfs-fuse/install.sh)" : false }, async () => {
  const source = extractGolden("vfs")
  const base = tempDir("conformance-zfs")
  const root = path.join(base, "docker")
  const pool = `casconf${process.pid}`
  const infra = path.join(repo, "scripts/infra/zfs")
  const started = spawnSync("sh", [path.join(infra, "start.sh")], { encoding: "utf8" })
  assert.equal(started.status, 0, started.stderr)
  try {
    const made = spawnSync("python3", [path.join(infra, "vfs-to-zfs.py"), source, root, path.join(base, "pool.img"), "--pool", pool], { encoding: "utf8" })
    assert.equal(made.status, 0, made.stderr)
    const reference = new Map<GraphId, string>()
    for (const id of fs.readdirSync(path.join(source, "vfs/dir"))) {
      if (/^[0-9a-f]{64}$/.test(id)) reference.set(id as GraphId, path.join(source, "vfs/dir", id))
    }
    const results = await runConformance({
      driver: builtinDrivers.zfs!(root, new Map([["zfs.fsname", `${pool}/docker`]])),
      graphRoot: root,
      storage: path.join(root, "zfs"),
      reference,
    })
    // zfs-fuse keeps no xattrs and only whole seconds: a regenerated tar of a tree that has a
    // security.capability xattr or a sub-second mtime cannot equal the vfs one. Those layers are listed.
    const lossy = new Set([...reference].filter(([, dir]) => hasWhatZfsFuseLoses(dir)).map(([id]) => id.slice(0, 12)))
    const failed = results.filter((r) => !r.ok && !(r.check.startsWith("fallback tar") && [...lossy].some((id) => r.check.includes(id))))
    assert.deepEqual(failed, [])
    assert.ok(lossy.size > 0 && lossy.size < reference.size, `excused layers: ${[...lossy].join(", ")}`)
  } finally {
    spawnSync("zpool", ["destroy", "-f", pool])
    for (const pid of started.stdout.trim().split(/\s+/)) spawnSync("sh", [path.join(infra, "stop.sh"), pid]) // leave no daemon behind
  }
})

test("an outside plugin loaded with --plugin: checksums gives every generated layer's diffID, and plugin-test passes", () => {
  const root = path.join(tempDir("plugin"), "docker")
  const { layers } = makeGraph(root, "vfs", ["--size", "2MiB", "--layers", "3"])
  fs.mkdirSync(path.join(root, "flat"))
  for (const id of fs.readdirSync(path.join(root, "vfs/dir"))) fs.renameSync(path.join(root, "vfs/dir", id), path.join(root, "flat", `${id}.layer`))
  fs.rmSync(path.join(root, "vfs"), { recursive: true })
  const plugin = path.join(repo, "test/plugins/flat.ts")
  const result = runCli(["checksums", "--plugin", plugin, "--graph", root, "--json"])
  assert.equal(result.code, 0, result.stderr)
  const report = JSON.parse(result.stdout) as { driver: string; layers: Array<{ id: string; diffId: string }> }
  assert.equal(report.driver, "flat")
  assert.deepEqual(layers.map((l) => report.layers.find((r) => r.id === l.id)?.diffId), layers.map((l) => l.diffId))
  const tested = runCli(["plugin-test", "--plugin", plugin, "--graph", root])
  assert.equal(tested.code, 0, tested.stdout)
  assert.match(tested.stdout, /plugin-test flat: (\d+)\/\1 checks passed/)
})

test("a plugin file without the expected exports is refused with exit code 2", () => {
  const root = tempDir("bad-plugin")
  fs.mkdirSync(path.join(root, "graph"))
  const bad = path.join(root, "bad-plugin.ts")
  fs.writeFileSync(bad, "export const name = 'bad'\n")
  const result = runCli(["checksums", "--plugin", bad, "--graph", root])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /must export `driver/)
})
