/**
 * The zfs plugin on real ZFS (zfs-fuse): the vfs golden laid out as Docker's
 * zfs driver made it (`scripts/infra/zfs/vfs-to-zfs.py`: a dataset per
 * layer, children cloned from their parent's snapshot), then `checksums` and
 * `migrate` with `--storage-opt zfs.fsname=...` give the vfs golden's values,
 * and nothing stays mounted.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import process from "node:process"
import { extractGolden, isRoot, repo, runCli, sh, snapshot, tempDir } from "./support/cli.ts"
import { haveDockerd } from "./support/dockerd.ts"
import { assertRootUnchanged, checkDockerLoad, type ExportReport, readMigrated, withOverlay2Dockerd } from "./support/exportLoad.ts"
import { differences, type Expected } from "./support/golden.ts"

const infra = path.join(repo, "scripts/infra/zfs")
const haveZfs = spawnSync("sh", ["-c", "command -v zfs-fuse && command -v zpool && grep -q zfs-fuse /sbin/mount.zfs"]).status === 0
const SKIP = !isRoot ? "needs root" : !haveZfs ? "needs zfs-fuse: run scripts/zfs-fuse/install.sh (CI does)" : false
if (SKIP !== false) console.warn(`\n*** zfs tests NOT RUN: ${SKIP} ***\n`)

/**
 * What zfs-fuse cannot keep (xattrs, sub-second mtimes) changes only regenerated tars of layers that
 * have them: none of the vfs golden's fallback layers do, so nothing is excused here.
 */
const ZFS_CANNOT_KEEP: ReadonlyArray<string> = []

test("the vfs golden on ZFS datasets: checksums and migrate give the vfs golden's values", { skip: SKIP }, () => {
  const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as Expected
  const source = extractGolden("vfs")
  const base = tempDir("zfs")
  const root = path.join(base, "docker")
  const pool = `casmig${process.pid}`
  const daemon = sh(`sh "$1/start.sh"`, infra).trim()
  try {
    sh(`python3 "$1/vfs-to-zfs.py" "$2" "$3" "$4/pool.img" --pool "$5"`, infra, source, root, base, pool)
    const options = ["--storage-driver", "zfs", "--storage-opt", `zfs.fsname=${pool}/docker`]
    const checked = runCli(["checksums", "--graph", root, ...options, "--json"])
    assert.equal(checked.code, 0, checked.stderr)
    assert.equal(runCli(["migrate", "--graph", root, ...options]).code, 1) // the golden's failing images
    const found = differences(root, expected, { from: "image/vfs", to: "image/zfs" })
      .filter((problem) => !ZFS_CANNOT_KEEP.some((id) => problem.includes(id)))
    assert.deepEqual(found, [])
    assert.equal(fs.readFileSync("/proc/mounts", "utf8").includes("cas-migrator-zfs"), false, "a dataset stayed mounted")
  } finally {
    spawnSync("zpool", ["destroy", "-f", pool])
    for (const pid of daemon.split(/\s+/)) spawnSync("sh", [path.join(infra, "stop.sh"), pid]) // leave no daemon behind
  }
})

const DOCKER_SKIP = SKIP !== false ? SKIP : !haveDockerd ? "needs Debian's docker.io (npm test installs it)" : false
if (SKIP === false && DOCKER_SKIP !== false) console.warn(`\n*** zfs export test NOT RUN: ${DOCKER_SKIP} ***\n`)

test("export from ZFS datasets: docker load (dockerd 20.10, fresh overlay2 root) gives migrate's image IDs and tags, docker save the diffIDs", { skip: DOCKER_SKIP }, () => {
  const base = tempDir("zfs-export")
  const root = path.join(base, "docker")
  // zfs-fuse is one daemon for the whole machine: a pool of our own, and the daemon stopped only if we started it and no pool is left.
  const pool = `export-rest-${process.pid}`
  const runningBefore = spawnSync("pgrep", ["-x", "zfs-fuse"]).status === 0
  const daemon = sh(`sh "$1/start.sh"`, infra).trim()
  try {
    sh(`python3 "$1/vfs-to-zfs.py" "$2" "$3" "$4/pool.img" --pool "$5"`, infra, extractGolden("vfs"), root, base, pool)
    const options = ["--storage-driver", "zfs", "--storage-opt", `zfs.fsname=${pool}/docker`]
    const before = snapshot(root)
    const archive = path.join(base, "all.tar")
    const exported = runCli(["export", "--graph", root, ...options, "--output", archive, "--json"])
    assert.equal(exported.code, 1, exported.stderr) // the golden's image whose created is null, and the one whose helper files lie
    assertRootUnchanged(root, before)
    assert.equal(fs.readFileSync("/proc/mounts", "utf8").includes(`${pool}/`), false, "export left a dataset mounted")
    assert.equal(runCli(["migrate", "--graph", root, ...options]).code, 1) // the golden's failing images
    const migrated = readMigrated(root, "zfs")
    const report = JSON.parse(exported.stdout) as ExportReport
    withOverlay2Dockerd(base, ({ docker }) => checkDockerLoad(docker, archive, report, migrated, "zfs"))
  } finally {
    spawnSync("zpool", ["destroy", "-f", pool])
    const pools = spawnSync("zpool", ["list", "-H", "-o", "name"], { encoding: "utf8" }).stdout.trim()
    if (!runningBefore && pools === "") for (const pid of daemon.split(/\s+/)) spawnSync("sh", [path.join(infra, "stop.sh"), pid])
  }
})

test("a zfs root without zfs.fsname and without a ZFS dataset on it is unusable, with a clear message", { skip: SKIP }, () => {
  const root = tempDir("zfs-nofsname")
  fs.mkdirSync(path.join(root, "graph"))
  fs.mkdirSync(path.join(root, "zfs"))
  const result = runCli(["checksums", "--graph", root])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /zfs\.fsname/)
})
