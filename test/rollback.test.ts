/**
 * `rollback`: after `migrate` (and `checksums`), the root is exactly as it
 * was before (every path, type, mode, size, inode, mtime of files, content),
 * for every golden; helper files stay unless `--checksums`; a killed rollback
 * finishes when run again; changes a newer daemon made (a real dockerd 20.10
 * creating a container) are refused unless `--force`, and the legacy parts
 * are then as before.
 */
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { haveDockerd, withDockerd } from "./support/dockerd.ts"
import { changedPaths, extractGolden, isRoot, runCli, snapshot, startCli } from "./support/cli.ts"

const NEEDS_ROOT = "needs root: the goldens hold device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** rollback tests NOT RUN: ${NEEDS_ROOT} ***\n`)

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  test(`${driver}: migrate then rollback --checksums leaves the root exactly as before; again: nothing to do`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
    const root = extractGolden(driver)
    const before = snapshot(root)
    assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
    assert.ok(fs.existsSync(path.join(root, "image", driver)))
    const run = runCli(["rollback", "--graph", root, "--checksums", "--json"])
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(changedPaths(before, snapshot(root)), [])
    const again = JSON.parse(runCli(["rollback", "--graph", root, "--checksums", "--json"]).stdout) as { exitCode: number; nothingToDo: boolean }
    assert.deepEqual([again.exitCode, again.nothingToDo], [0, true])
  })
}

test("after migrate --target-driver overlay2 (the layers unpacked into overlay2/), rollback --checksums leaves the root exactly as before", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = extractGolden("vfs")
  const before = snapshot(root)
  assert.equal(runCli(["migrate", "--graph", root, "--target-driver", "overlay2"]).code, 1) // the golden's failing images
  assert.ok(fs.readdirSync(path.join(root, "overlay2")).length > 1, "no layer unpacked into overlay2/")
  assert.ok(fs.existsSync(path.join(root, "image", "overlay2", "repositories.json")))
  const run = runCli(["rollback", "--graph", root, "--checksums", "--json"])
  assert.equal(run.code, 0, run.stderr)
  assert.deepEqual(changedPaths(before, snapshot(root)), [])
})

test("rollback without --checksums keeps the helper files (and their journal), then --checksums removes them", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = extractGolden("overlay")
  const before = snapshot(root)
  assert.equal(runCli(["checksums", "--graph", root]).code, 0)
  const withHelpers = snapshot(root)
  assert.equal(runCli(["migrate", "--graph", root]).code, 1)
  assert.equal(runCli(["rollback", "--graph", root]).code, 0)
  // Only the journal changed (it keeps the helper files' entries, for a later rollback --checksums).
  const kept = changedPaths(withHelpers, snapshot(root))
  assert.deepEqual(kept, [".cas-migrator-journal"], "rollback without --checksums changed more than migrate's files")
  assert.equal(runCli(["rollback", "--graph", root, "--checksums"]).code, 0)
  assert.deepEqual(changedPaths(before, snapshot(root)), [])
})

test("rollback killed with SIGKILL at 12 points, then run again, leaves the root exactly as before", { skip: isRoot ? false : NEEDS_ROOT }, async () => {
  const root = extractGolden("vfs")
  const before = snapshot(root)
  runCli(["migrate", "--graph", root])
  for (let point = 0; point < 12; point++) {
    const child = startCli(["rollback", "--graph", root, "--checksums"])
    await new Promise((resolve) => setTimeout(resolve, 150 + point * 40 + Math.floor(Math.random() * 40)))
    child.kill("SIGKILL")
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on("exit", resolve)))
  }
  assert.equal(runCli(["rollback", "--graph", root, "--checksums"]).code, 0)
  assert.deepEqual(changedPaths(before, snapshot(root)), [])
})

const DOCKER_SKIP = !isRoot ? NEEDS_ROOT : !haveDockerd ? "needs Debian's docker.io (npm test installs it)" : false
if (DOCKER_SKIP !== false) console.warn(`\n*** rollback after a real daemon NOT RUN: ${DOCKER_SKIP} ***\n`)

/**
 * The legacy root as the old daemon reads it: graph/, the legacy layers' data, the tags, the containers'
 * own files (what a newer daemon added beside them, its own layers and containers, is not legacy).
 */
const legacyParts = (root: string, snap: Map<string, string>) => {
  const legacyIds = new Set(fs.readdirSync(path.join(root, "graph")))
  return new Map([...snap].filter(([p]) => {
    if (/\/\.migration-/.test(p)) return false
    if (p.startsWith("graph/") || p.startsWith("repositories-") || /^containers\/[0-9a-f]{64}\/config\.json$/.test(p)) return true
    const layer = /^vfs\/dir\/([^/]+)/.exec(p)
    return layer !== null && legacyIds.has(layer[1]!)
  }))
}

test("after migrate, a real dockerd 20.10 creates a container: rollback refuses and lists it; --force rolls back, the legacy parts as before", { skip: DOCKER_SKIP }, () => {
  const root = extractGolden("vfs")
  const before = legacyParts(root, snapshot(root))
  runCli(["migrate", "--graph", root])
  withDockerd(root, "vfs", ({ docker }) => docker("create", "busybox:1.0", "/bin/true"))
  const refused = runCli(["rollback", "--graph", root, "--json"])
  assert.equal(refused.code, 1, refused.stderr)
  const report = JSON.parse(refused.stdout) as { refused: boolean; sinceMigrate: Array<{ kind: string; item: string }> }
  assert.ok(report.refused && report.sinceMigrate.some((c) => c.kind === "container"), refused.stdout)
  assert.ok(fs.existsSync(path.join(root, "image", "vfs")), "a refused rollback removed something")
  const forced = runCli(["rollback", "--graph", root, "--force", "--checksums", "--json"])
  assert.equal(forced.code, 0, forced.stderr)
  assert.equal(fs.existsSync(path.join(root, "image", "vfs")), false)
  const after = legacyParts(root, snapshot(root))
  const differ = [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p))
  assert.deepEqual(differ, [])
})
