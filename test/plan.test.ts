/**
 * `plan` predicts `migrate`: on every golden, run plan, then migrate on a
 * copy, and compare item by item. Without --deep every layer's path is right
 * except where only hashing shows the fault (a CRC mismatch), and every
 * image, container and tag; with --deep everything, image IDs included. And
 * plan writes nothing.
 */
import assert from "node:assert/strict"
import * as path from "node:path"
import { test } from "node:test"
import { changedPaths, extractGolden, isRoot, runCli, sh, snapshot, tempDir } from "./support/cli.ts"

const NEEDS_ROOT = "needs root: the goldens hold device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** plan tests NOT RUN: ${NEEDS_ROOT} ***\n`)

interface Plan {
  exitCode: number
  fatal: string | null
  layers: Array<{ id: string; path: string }>
  images: Array<{ id: string; status: string; imageId?: string }>
  containers: Array<{ id: string; status: string }>
  tags: Array<{ name: string; tag: string; status: string }>
}
interface Migrated {
  exitCode: number
  fatal: string | null
  layers: Array<{ id: string; status: string; path?: string; fallbackKind?: string }>
  images: Array<{ id: string; status: string; imageId?: string }>
  containers: Array<{ id: string; status: string }>
  tags: Array<{ name: string; tag: string; status: string }>
}

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  for (const deep of [false, true]) {
    test(`${driver}: plan${deep ? " --deep" : ""} predicts migrate item by item, and writes nothing`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
      const root = extractGolden(driver)
      const before = snapshot(root)
      const planned = runCli(["plan", "--graph", root, "--json", ...(deep ? ["--deep"] : [])])
      const plan = JSON.parse(planned.stdout) as Plan
      assert.deepEqual(changedPaths(before, snapshot(root)), [], "plan wrote into the root")
      const copy = path.join(tempDir("plan-copy"), "docker")
      sh(`cp -a "$1" "$2"`, root, copy)
      const migrated = runCli(["migrate", "--graph", copy, "--json"])
      const actual = JSON.parse(migrated.stdout) as Migrated
      assert.equal(plan.exitCode, actual.exitCode)
      assert.equal(plan.fatal, actual.fatal)
      const wrong: Array<string> = []
      for (const layer of actual.layers) {
        const want = layer.status === "failed" ? "failed" : layer.path
        const got = plan.layers.find((l) => l.id === layer.id)?.path
        const onlyHashingShows = !deep && layer.fallbackKind === "CrcMismatch" && got === "tarsplit"
        if (got !== want && !onlyHashingShows) wrong.push(`layer ${layer.id}: plan ${got}, migrate ${want}`)
      }
      assert.equal(plan.layers.length, actual.layers.length)
      for (const image of actual.images) {
        const got = plan.images.find((i) => i.id === image.id)
        if (got?.status !== image.status) wrong.push(`image ${image.id}: plan ${got?.status}, migrate ${image.status}`)
        if (deep && image.imageId !== undefined && got?.imageId !== image.imageId) wrong.push(`image ${image.id}: plan ID ${got?.imageId}, migrate ${image.imageId}`)
      }
      assert.equal(plan.images.length, actual.images.length)
      for (const container of actual.containers) {
        const got = plan.containers.find((c) => c.id === container.id)?.status
        if (got !== container.status) wrong.push(`container ${container.id}: plan ${got}, migrate ${container.status}`)
      }
      assert.equal(plan.tags.length, actual.tags.length)
      for (const tag of actual.tags) {
        const got = plan.tags.find((t) => t.name === tag.name && t.tag === tag.tag)?.status
        if (got !== tag.status) wrong.push(`tag ${tag.name}:${tag.tag}: plan ${got}, migrate ${tag.status}`)
      }
      assert.deepEqual(wrong, [])
    })
  }
}
