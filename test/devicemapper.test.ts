/**
 * The devicemapper plugin, reading thin devices without device-mapper
 * (`thin_dump` + a sparse image + a read-only loop mount): the vfs golden laid
 * out as Docker's loop-lvm pool (scripts/devicemapper/vfs-to-devicemapper.ts,
 * whose metadata is written by thin_restore), then `checksums`, `migrate` and
 * the conformance kit give the vfs golden's values, and no loop device or
 * mount is left behind.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { builtinDrivers } from "../plugins/index.ts"
import { parseThinDumpLine } from "../plugins/devicemapper/DirectRead.ts"
import { processAlive } from "../src/platform/Processes.ts"
import type { GraphId } from "../src/Ids.ts"
import { vfsToDevicemapper } from "../scripts/devicemapper/vfs-to-devicemapper.ts"
import { runConformance } from "./conformance/StorageDriverConformance.ts"
import { extractGolden, isRoot, repo, runCli, snapshot, startCli, tempDir } from "./support/cli.ts"
import { haveDockerd } from "./support/dockerd.ts"
import { assertRootUnchanged, checkDockerLoad, type ExportReport, readMigrated, withOverlay2Dockerd } from "./support/exportLoad.ts"
import { differences, type Expected } from "./support/golden.ts"

const haveTools = spawnSync("sh", ["-c", "command -v thin_dump && command -v thin_restore && command -v mkfs.ext4 && command -v rsync"]).status === 0
const SKIP = !isRoot ? "needs root (loop mounts)" : !haveTools ? "needs thin-provisioning-tools, e2fsprogs, rsync (CI installs them)" : false
if (SKIP !== false) console.warn(`\n*** devicemapper tests NOT RUN: ${SKIP} ***\n`)

test("thin_dump's lines: the block size, single and range mappings, nothing else", () => {
  assert.deepEqual(parseThinDumpLine(`<superblock uuid="" time="27" transaction="28" flags="0" version="2" data_block_size="128" nr_data_blocks="1638400">`), { blockBytes: 65536 })
  assert.deepEqual(parseThinDumpLine(`    <single_mapping origin_block="4" data_block="244" time="11"/>`), { virtual: 4, data: 244, length: 1 })
  assert.deepEqual(parseThinDumpLine(`    <range_mapping origin_begin="1" data_begin="132" length="3" time="0"/>`), { virtual: 1, data: 132, length: 3 })
  assert.equal(parseThinDumpLine(`  <device dev_id="12" mapped_blocks="159" transaction="0" creation_time="11" snap_time="12">`), undefined)
  assert.throws(() => parseThinDumpLine(`<range_mapping origin_begin="1" length="3"/>`), /data_begin missing/)
})

const loops = () => spawnSync("losetup", ["-a"], { encoding: "utf8" }).stdout

test("the vfs golden in a thin pool, read without device-mapper: checksums, migrate and the conformance kit", { skip: SKIP }, async () => {
  const loopsBefore = loops()
  const source = extractGolden("vfs")
  const root = path.join(tempDir("devicemapper"), "docker")
  vfsToDevicemapper(source, root, 64 * 1024 * 1024)
  assert.equal(runCli(["checksums", "--graph", root]).code, 0)
  assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
  const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as Expected
  assert.deepEqual(differences(root, expected, { from: "image/vfs", to: "image/devicemapper" }), [])

  const reference = new Map<GraphId, string>()
  for (const id of fs.readdirSync(path.join(source, "vfs/dir"))) {
    if (/^[0-9a-f]{64}$/.test(id)) reference.set(id as GraphId, path.join(source, "vfs/dir", id))
  }
  const results = await runConformance({
    driver: builtinDrivers.devicemapper!(root, new Map()),
    graphRoot: root,
    storage: path.join(root, "devicemapper"),
    reference,
  })
  assert.deepEqual(results.filter((r) => !r.ok), [])
  assert.equal(fs.readFileSync("/proc/mounts", "utf8").includes("cas-migrator-dm"), false, "a device stayed mounted")
  assert.equal(loops(), loopsBefore, "a loop device stayed attached")

  // A layer whose device record is broken fails alone, with the file and the reason.
  const [broken, other] = fs.readdirSync(path.join(root, "graph")).filter((id) => fs.existsSync(path.join(root, "graph", id, ".migration-diffid")))
  assert.ok(broken !== undefined && other !== undefined)
  fs.writeFileSync(path.join(root, "devicemapper/metadata", broken), `{"device_id": "x"`)
  for (const id of [broken, other]) fs.rmSync(path.join(root, "graph", id, ".migration-diffid"))
  const rerun = runCli(["checksums", "--graph", root, "--json"])
  assert.equal(rerun.code, 1, rerun.stderr)
  assert.match(rerun.stderr, new RegExp(`Cannot read layer ${broken} from devicemapper: .*metadata/${broken}: not JSON`))
  assert.ok(fs.existsSync(path.join(root, "graph", other, ".migration-diffid")), "the other layer was not done")
})

const XFS_SKIP = SKIP !== false
  ? SKIP
  : spawnSync("sh", ["-c", "command -v mkfs.xfs && grep -qw xfs /proc/filesystems"]).status !== 0
  ? "needs mkfs.xfs (xfsprogs, CI installs it) and a kernel with xfs"
  : false
if (SKIP === false && XFS_SKIP !== false) console.warn(`\n*** devicemapper xfs test NOT RUN: ${XFS_SKIP} ***\n`)

test("xfs thin devices (Docker's dm.fs=xfs), read without device-mapper: the vfs golden's values", { skip: XFS_SKIP }, () => {
  const root = path.join(tempDir("devicemapper-xfs"), "docker")
  vfsToDevicemapper(extractGolden("vfs"), root, 320 * 1024 * 1024, "xfs") // xfs needs 300 MiB at least
  assert.equal(runCli(["checksums", "--graph", root]).code, 0)
  assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
  const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as Expected
  assert.deepEqual(differences(root, expected, { from: "image/vfs", to: "image/devicemapper" }), [])
  assert.equal(fs.readFileSync("/proc/mounts", "utf8").includes("cas-migrator-dm"), false, "a device stayed mounted")
})

test("a pool given as block devices (dm.metadatadev, dm.datadev on read-only loops): thin_dump runs one at a time, every value right", { skip: SKIP }, () => {
  const root = path.join(tempDir("devicemapper-blockdev"), "docker")
  vfsToDevicemapper(extractGolden("vfs"), root, 64 * 1024 * 1024)
  const attach = (file: string) => {
    const result = spawnSync("losetup", ["--find", "--show", "--read-only", file], { encoding: "utf8" })
    assert.equal(result.status, 0, result.stderr)
    return result.stdout.trim()
  }
  const metadata = attach(path.join(root, "devicemapper/devicemapper/metadata"))
  const data = attach(path.join(root, "devicemapper/devicemapper/data"))
  try {
    const options = ["--storage-opt", "dm.access=direct", "--storage-opt", `dm.metadatadev=${metadata}`, "--storage-opt", `dm.datadev=${data}`]
    const checked = runCli(["checksums", "--graph", root, ...options])
    assert.equal(checked.code, 0, checked.stderr)
    assert.doesNotMatch(checked.stderr, /busy/i)
    assert.equal(runCli(["migrate", "--graph", root, ...options]).code, 1) // the golden's failing images
    const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as Expected
    assert.deepEqual(differences(root, expected, { from: "image/vfs", to: "image/devicemapper" }), [])
  } finally {
    spawnSync("losetup", ["-d", metadata, data])
  }
})

const DOCKER_SKIP = SKIP !== false ? SKIP : !haveDockerd ? "needs Debian's docker.io (npm test installs it)" : false
if (SKIP === false && DOCKER_SKIP !== false) console.warn(`\n*** devicemapper export test NOT RUN: ${DOCKER_SKIP} ***\n`)

test("export from a thin pool read without device-mapper: docker load (dockerd 20.10, fresh overlay2 root) gives migrate's image IDs and tags, docker save the diffIDs", { skip: DOCKER_SKIP }, () => {
  const base = tempDir("devicemapper-export")
  const root = path.join(base, "docker")
  vfsToDevicemapper(extractGolden("vfs"), root, 64 * 1024 * 1024)
  const before = snapshot(root)
  const archive = path.join(base, "all.tar")
  const exported = runCli(["export", "--graph", root, "--output", archive, "--json"])
  assert.equal(exported.code, 1, exported.stderr) // the golden's image whose created is null, and the one whose helper files lie
  assertRootUnchanged(root, before)
  const ours = () => spawnSync("losetup", ["-a"], { encoding: "utf8" }).stdout.split("\n").filter((line) => line.includes(root))
  assert.deepEqual(ours(), [], "export left a loop device attached")
  assert.equal(fs.readFileSync("/proc/mounts", "utf8").includes(root), false, "export left a device mounted")
  assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
  const migrated = readMigrated(root, "devicemapper")
  const report = JSON.parse(exported.stdout) as ExportReport
  withOverlay2Dockerd(base, ({ docker }) => checkDockerLoad(docker, archive, report, migrated, "devicemapper"))
})

/**
 * Waits until the process has really exited. Deno's child_process reports 'exit' (with the signal it
 * sent) as soon as it has sent the signal, while the process may still be cleaning up.
 */
const gone = async (pid: number | undefined) => {
  for (let i = 0; i < 200 && pid !== undefined && processAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50))
}

test("SIGINT while layers are mounted: the CLI unmounts and detaches everything before it exits", { skip: SKIP }, async () => {
  const source = extractGolden("vfs")
  const root = path.join(tempDir("devicemapper-sigint"), "docker")
  vfsToDevicemapper(source, root, 64 * 1024 * 1024)
  const loopsBefore = loops()
  let interruptedMidway = 0
  for (let attempt = 0; attempt < 4; attempt++) {
    for (const id of fs.readdirSync(path.join(root, "graph"))) {
      for (const helper of [".migration-diffid", ".migration-size", ".migration-tardata"]) fs.rmSync(path.join(root, "graph", id, helper), { force: true })
    }
    const child = startCli(["checksums", "--graph", root, "--jobs", "1"])
    await new Promise((resolve) => setTimeout(resolve, 250 + attempt * 150))
    const exited = child.exitCode !== null
    if (!exited) {
      child.kill("SIGINT")
      interruptedMidway++
    }
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on("exit", resolve)))
    await gone(child.pid)
    const left = fs.readFileSync("/proc/mounts", "utf8").split("\n").filter((l) => l.includes("cas-migrator-dm"))
    assert.deepEqual(left, [], `a device stayed mounted after SIGINT (attempt ${attempt}, exit ${child.exitCode} ${child.signalCode})`)
    assert.equal(loops(), loopsBefore, "a loop device stayed attached after SIGINT")
  }
  assert.ok(interruptedMidway > 0, "no run was still going when SIGINT came")
})

test("SIGKILL while layers are mounted: the next run unmounts and removes what the killed one left, then completes", { skip: SKIP }, async () => {
  const source = extractGolden("vfs")
  const root = path.join(tempDir("devicemapper-sigkill"), "docker")
  vfsToDevicemapper(source, root, 64 * 1024 * 1024)
  const loopsBefore = loops()
  const ours = () => fs.readFileSync("/proc/mounts", "utf8").split("\n").filter((l) => l.includes(`${root}/tmp/cas-migrator-dm`))
  let killedMounted = false
  for (let attempt = 0; attempt < 5 && !killedMounted; attempt++) {
    const child = startCli(["checksums", "--graph", root, "--jobs", "1"])
    for (let i = 0; i < 400 && ours().length === 0 && child.exitCode === null; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    child.kill("SIGKILL")
    await gone(child.pid)
    killedMounted = ours().length > 0
    if (!killedMounted) {
      for (const id of fs.readdirSync(path.join(root, "graph"))) fs.rmSync(path.join(root, "graph", id, ".migration-diffid"), { force: true })
    }
  }
  assert.ok(killedMounted, "no run was killed with a layer mounted")
  const rerun = runCli(["checksums", "--graph", root])
  assert.equal(rerun.code, 0, rerun.stderr)
  assert.match(rerun.stderr, /devicemapper: removed what killed runs left in .*cas-migrator-dm-/)
  assert.deepEqual(ours(), [], "a killed run's mount stayed")
  assert.deepEqual(fs.readdirSync(path.join(root, "tmp")).filter((name) => name.startsWith("cas-migrator")), [])
  assert.equal(loops(), loopsBefore, "a killed run's loop device stayed attached")
})
