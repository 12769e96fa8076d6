/**
 * A real Docker daemon (Debian's 20.10, `scripts/infra/dockerd/`) opens
 * what `migrate` wrote for the vfs, overlay (on a loop-mounted ext4) and btrfs
 * (on a loop-mounted btrfs) goldens. Every check passes except where Docker
 * 1.10's own result is something a modern daemon refuses; those are listed
 * here, each with its reason, and derived from the golden's roles.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { extractGolden, isRoot, makeGraph, repo, runCli, sh, tempDir } from "./support/cli.ts"

const infra = path.join(repo, "scripts/infra/dockerd")
const haveDockerd = spawnSync("sh", ["-c", "command -v dockerd && command -v containerd"]).status === 0
const SKIP = !isRoot
  ? "needs root (loop mounts, a real daemon)"
  : !haveDockerd
  ? "needs Debian's docker.io: run scripts/infra/dockerd/install.sh (CI does)"
  : false
if (SKIP !== false) console.warn(`\n*** real-daemon tests NOT RUN: ${SKIP} ***\n`)

interface Expected {
  readonly layers: Record<string, { readonly path: string }>
  readonly images: Record<string, { readonly migrated: boolean; readonly image_id?: string; readonly diff_ids?: ReadonlyArray<string> }>
  readonly containers: Record<string, {
    readonly role: string
    readonly mount: unknown
    readonly config_v2_image: string | null
    readonly config_v2_preexisting?: boolean
  }>
}

/** Checks of accept.py that fail on Docker 1.10's own output, and why. */
const knownRefusals = (expected: Expected) => {
  const containers = new Map<string, string>()
  for (const [id, c] of Object.entries(expected.containers)) {
    if (c.config_v2_image === null) containers.set(id, `Docker 1.10 wrote no config.v2.json (${c.role}); the daemon cannot load it`)
    else if (c.config_v2_preexisting === true) containers.set(id, `its config.v2.json predates the migration and was left alone (${c.role})`)
    else if (c.mount === null) containers.set(id, `Docker 1.10 recorded no mount: its read-write layer is missing (${c.role})`)
  }
  // A layer whose helper files were already there is trusted with the values in them, as Docker did.
  const trusted = new Set(Object.entries(expected.layers).filter(([, l]) => l.path === "preexisting").map(([id]) => id))
  const trustedDiffIds = new Set(Object.entries(expected.images).filter(([id]) => trusted.has(id)).flatMap(([, i]) => i.diff_ids?.slice(-1) ?? []))
  const images = new Map<string, string>()
  for (const image of Object.values(expected.images)) {
    if (image.migrated && image.diff_ids?.some((d) => trustedDiffIds.has(d))) {
      images.set(image.image_id!.slice(7, 19), "a layer's pre-existing helper files hold wrong values, trusted as Docker trusted them: docker save finds the mismatch")
    }
  }
  return { containers, images }
}

const accept = (root: string, driver: string) => {
  const report = path.join(path.dirname(root), `${driver}-accept.json`)
  spawnSync("bash", [path.join(infra, "accept.sh"), root, driver, "--json", report], { encoding: "utf8" })
  return JSON.parse(fs.readFileSync(report, "utf8")) as {
    readonly checks: ReadonlyArray<{ readonly check: string; readonly ok: boolean; readonly detail: string }>
  }
}

const loopMount = (kind: "ext4" | "btrfs") => {
  const base = tempDir(`loop-${kind}`)
  const image = path.join(base, "fs.img")
  const mountpoint = path.join(base, "mnt")
  fs.mkdirSync(mountpoint)
  sh(`truncate -s 1G "$1" && ${kind === "ext4" ? "mkfs.ext4 -q -F" : "mkfs.btrfs -q -f"} "$1" && mount -o loop "$1" "$2"`, image, mountpoint)
  return { mountpoint, unmount: () => sh(`umount "$1" && rm -f "$2"`, mountpoint, image) }
}

for (const driver of ["vfs", "overlay", "btrfs"] as const) {
  test(`the ${driver} golden, migrated, is accepted by a real Docker 20.10 daemon (known refusals named)`, { skip: SKIP }, () => {
    const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens", driver, "expected.json"), "utf8")) as Expected
    const mount = driver === "vfs" ? undefined : loopMount(driver === "overlay" ? "ext4" : "btrfs")
    try {
      const extracted = extractGolden(driver)
      const root = mount === undefined ? extracted : path.join(mount.mountpoint, "docker")
      if (mount !== undefined) sh(`cp -a "$1" "$2"`, extracted, root)
      assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
      const { containers, images } = knownRefusals(expected)
      const unexpected: Array<string> = []
      for (const check of accept(root, driver).checks) {
        if (check.ok) continue
        const container = /^container ([0-9a-f]{12})/.exec(check.check)?.[1]
        const image = /^save ([0-9a-f]{12})/.exec(check.check)?.[1]
        if (container !== undefined && [...containers.keys()].some((id) => id.startsWith(container))) continue
        if (image !== undefined && images.has(image)) continue
        if (check.check === "daemon log has no store errors") {
          const ids = [...check.detail.matchAll(/containers\/([0-9a-f]{64})|container=([0-9a-f]{64})/g)].map((m) => m[1] ?? m[2])
          const other = check.detail.split("; ").filter((line) => !ids.some((id) => id !== undefined && line.includes(id.slice(-16))))
          if (ids.every((id) => id !== undefined && containers.has(id)) && other.length === 0) continue
        }
        unexpected.push(`${check.check}: ${check.detail}`)
      }
      assert.deepEqual(unexpected, [], "the daemon refused something Docker 1.10 wrote correctly")
      assert.ok(containers.size > 0 && images.size > 0, "the known refusals were not derived from the golden")
    } finally {
      mount?.unmount()
    }
  })
}

test("a generated legacy graph with a real busybox layer runs after migrate (docker run prints ok, docker save gives the diffIDs)", { skip: SKIP }, () => {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((file) => fs.existsSync(file))
  assert.ok(busybox !== undefined, "busybox-static is installed with docker.io by infra/dockerd/install.sh")
  const root = path.join(tempDir("runnable"), "docker")
  const { layers } = makeGraph(root, "vfs", ["--size", "2MiB", "--layers", "2", "--busybox", busybox])
  const migrated = runCli(["migrate", "--graph", root, "--json"])
  assert.equal(migrated.code, 0, migrated.stderr)
  const report = JSON.parse(migrated.stdout) as { layers: Array<{ id: string; diffId: string }> }
  assert.deepEqual(layers.map((l) => report.layers.find((r) => r.id === l.id)?.diffId), layers.map((l) => l.diffId))
  const result = spawnSync("bash", [path.join(infra, "accept.sh"), root, "vfs", "--run", "sample/app:latest"], { encoding: "utf8" })
  assert.match(result.stdout, /PASS run sample\/app:latest: ok/)
  assert.match(result.stdout, /dockerd acceptance: (\d+)\/\1 checks passed/)
  assert.equal(result.status, 0)
})
