/**
 * devicemapper on a pool made by a real kernel's thin-pool target. This
 * machine's kernel has no device-mapper, so a guest with Debian's kernel runs
 * under qemu's software emulation (scripts/devicemapper/thin-pool-in-guest.ts):
 *
 * 1. boot 1 lays the vfs golden out as Docker's loop-lvm pool; on this host,
 *    read without device-mapper (`direct`), `checksums` and `migrate` give the
 *    vfs golden's values, and `dm.access=dmsetup` is refused with a reason;
 * 2. boot 2 runs the compiled binary in the guest with `dmsetup` activation:
 *    what a run killed with SIGKILL left is removed by the next, SIGINT while
 *    a device is mounted leaves nothing behind, the re-run
 *    completes, the conformance kit passes on our own pool, with `auto`, and
 *    on Docker's active pool (left active), and `migrate` gives the vfs
 *    golden's values.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { buildThinPoolInGuest, readThinPoolInGuest } from "../scripts/devicemapper/thin-pool-in-guest.ts"
import { extractGolden, isRoot, repo, runCli, tempDir } from "./support/cli.ts"
import { differences, type Expected } from "./support/golden.ts"

const has = (command: string) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0
const kernelPackage = spawnSync("apt-cache", ["depends", "linux-image-amd64"], { encoding: "utf8" }).stdout?.includes("linux-image-") ?? false
const SKIP = !isRoot
  ? "needs root (loop mounts)"
  : !has("qemu-system-x86_64")
  ? "needs qemu-system-x86 (CI installs it)"
  : !has("thin_dump") || !has("mke2fs")
  ? "needs thin-provisioning-tools and e2fsprogs (CI installs them)"
  : !kernelPackage
  ? "needs apt to know linux-image-amd64 (run apt-get update)"
  : false
if (SKIP !== false) console.warn(`\n*** devicemapper guest tests NOT RUN: ${SKIP} ***\n`)

const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as Expected
const store = { from: "image/vfs", to: "image/devicemapper" }
const DEVICE_SIZE = 64 * 1024 * 1024
const MINUTES = 60 * 1000

let built: string | undefined
/** The kernel-built pool, once per run (the guest caches it too, by content). */
const kernelBuiltPool = () => {
  if (built === undefined) {
    const root = path.join(tempDir("dm-guest-pool"), "docker")
    buildThinPoolInGuest(extractGolden("vfs"), root, { deviceSize: DEVICE_SIZE })
    built = root
  }
  const copy = path.join(tempDir("dm-guest"), "docker")
  assert.equal(spawnSync("cp", ["-a", "--sparse=always", built, copy]).status, 0)
  return copy
}

test("a pool made by the kernel's thin-pool target, read here without device-mapper, gives the vfs golden's values", { skip: SKIP, timeout: 15 * MINUTES }, () => {
  const root = kernelBuiltPool()
  const forced = runCli(["checksums", "--graph", root, "--storage-opt", "dm.access=dmsetup"])
  assert.equal(forced.code, 2, forced.stderr)
  assert.match(forced.stderr, /dm\.access=dmsetup: this kernel has no device-mapper/)

  const checksums = runCli(["checksums", "--graph", root])
  assert.equal(checksums.code, 0, checksums.stderr)
  assert.match(checksums.stderr, /thin devices reached through direct \(dm\.access=auto; device-mapper missing\)/)
  assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
  assert.deepEqual(differences(root, expected, store), [])
  assert.deepEqual(fs.readdirSync(path.join(root, "tmp")).filter((name) => name.startsWith("cas-migrator")), [], "scratch left in <root>/tmp")
})

test("in the guest, with dmsetup activation: SIGINT, re-run, the conformance kit on our pool and on Docker's, migrate", { skip: SKIP, timeout: 20 * MINUTES }, () => {
  const root = kernelBuiltPool()
  const dist = tempDir("dm-guest-binary")
  const compiled = spawnSync(path.join(repo, "node_modules/.bin/bun"), [path.join(repo, "build.ts"), "--only", "glibc", "--outdir", dist], { encoding: "utf8" })
  assert.equal(compiled.status, 0, compiled.stderr)
  const out = tempDir("dm-guest-out")
  const run = readThinPoolInGuest(root, path.join(dist, "cas-migrator"), out)
  const serial = run.console.slice(-3000)
  assert.equal(run.status, 0, `the guest's read-pool.sh did not finish:\n${serial}`)
  const read = (name: string) => fs.readFileSync(path.join(out, name), "utf8").trim()
  const code = (step: string) => Number(read(`${step}.code`))

  // 0. Killed with a device mounted: its devices, loops and mounts stay...
  assert.equal(read("sigkill.seen"), "yes", "no thin device was mounted when SIGKILL was to be sent")
  assert.equal(code("sigkill"), 137)
  const killedLeft = read("leftovers-sigkill").split("\n")
  assert.ok(killedLeft.some((line) => /^cas-migrator-\d+-pool\s/.test(line)), killedLeft.join("\n"))
  assert.ok(killedLeft.some((line) => line.includes("/tmp/cas-migrator-dm-")), killedLeft.join("\n"))
  // ... until the next run removes them.
  assert.match(read("sigint.stderr"), /devicemapper: removed what killed runs left in \S+: cas-migrator-dm-/)
  assert.match(read("sigint.stderr"), /devicemapper: removed what killed runs left: cas-migrator-\d+-\d+.*cas-migrator-\d+-pool.*\/dev\/loop/)
  // 1. Interrupted with a device mounted: exit 130, nothing left (no dm device, loop or mount).
  assert.equal(read("sigint.seen"), "yes", "no thin device was mounted when SIGINT was to be sent")
  assert.equal(code("sigint"), 130, read("sigint.stderr"))
  assert.equal(read("leftovers-sigint"), "")
  // 2. The re-run completes.
  assert.equal(code("checksums"), 0, read("checksums.stderr"))
  // 3. The kit, forced and automatic.
  for (const step of ["plugin-test", "plugin-test-auto"]) {
    assert.equal(code(step), 0, read(`${step}.json`))
    const report = JSON.parse(read(`${step}.json`)) as { passed: number; total: number }
    assert.ok(report.total >= 5 && report.passed === report.total, read(`${step}.json`))
    assert.equal(read(`leftovers-${step}`), "")
  }
  assert.match(read("plugin-test-auto.stderr"), /thin devices reached through dmsetup \(dm\.access=auto; device-mapper found\)/)
  // 4. Docker's pool: used, and left as it was (active, its loops attached), nothing of ours beside it.
  assert.equal(code("plugin-test-docker-pool"), 0, read("plugin-test-docker-pool.json"))
  const left = read("leftovers-plugin-test-docker-pool").split("\n")
  assert.ok(left[0]?.startsWith(`${read("docker-pool")}\t`), left.join("\n"))
  assert.deepEqual(left.filter((line) => line.includes("cas-migrator") || line.startsWith("/dev/mapper")), [])
  assert.equal(left.length, 3, left.join("\n")) // the pool and its two loops
  // 5. migrate: the vfs golden's store.
  assert.equal(code("migrate"), 1, read("migrate.stderr")) // the golden's failing images
  assert.equal(read("leftovers-end"), "")
  assert.deepEqual(differences(root, expected, store), [])
})
