/**
 * The goldens (legacy graphs migrated by Docker's own Go code) are the judge:
 * every tar-split and preexisting layer gets exactly the expected diffID,
 * size and `.migration-tardata`; every fallback layer gets a clear error
 * naming it (regenerating tars is the fallback issue).
 */
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { gunzipSync } from "node:zlib"
import { extractGolden, isRoot, repo, runCli } from "./support/cli.ts"

interface ExpectedLayer {
  readonly diff_id: string
  readonly size: number
  readonly path: "tarsplit" | "fallback" | "preexisting"
  readonly role: string
  readonly migration_tardata_sha256_decompressed: string
  readonly migration_tardata_hardlinked: boolean
}

interface Report {
  readonly exitCode: number
  readonly layers: ReadonlyArray<{ readonly id: string; readonly status: string; readonly path?: string; readonly error?: string }>
}

const NEEDS_ROOT = "needs root: the fixtures hold device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** golden tests NOT RUN: ${NEEDS_ROOT} ***\n`)

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  const expected = JSON.parse(
    fs.readFileSync(path.join(repo, "../shared/goldens", driver, "expected.json"), "utf8"),
  ) as { readonly layers: Record<string, ExpectedLayer> }
  let run: { root: string; report: Report; code: number | null } | undefined
  const checksums = () => {
    if (run === undefined) {
      const root = extractGolden(driver)
      const result = runCli(["checksums", "--graph", root, "--json"])
      run = { root, report: JSON.parse(result.stdout) as Report, code: result.code }
    }
    return run
  }

  test(`${driver}: checksums exits 1 because the fallback layers fail`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
    const { report, code } = checksums()
    assert.equal(code, 1)
    assert.equal(report.exitCode, 1)
  })

  for (const [id, layer] of Object.entries(expected.layers)) {
    const name = `${driver}: ${layer.path} layer ${id.slice(0, 12)} (${layer.role.slice(0, 90)})`
    test(name, { skip: isRoot ? false : NEEDS_ROOT }, () => {
      const { root, report } = checksums()
      const graphDir = path.join(root, "graph", id)
      const reported = report.layers.find((entry) => entry.id === id)
      assert.ok(reported, "layer missing from the --json report")
      if (layer.path === "fallback") {
        assert.equal(reported.status, "failed")
        assert.match(reported.error ?? "", new RegExp(id))
        assert.equal(fs.existsSync(path.join(graphDir, ".migration-diffid")), false)
        return
      }
      assert.equal(reported.status, "done")
      assert.equal(reported.path, layer.path)
      assert.equal(fs.readFileSync(path.join(graphDir, ".migration-diffid"), "utf8"), layer.diff_id)
      assert.equal(Number(fs.readFileSync(path.join(graphDir, ".migration-size"), "utf8")), layer.size)
      const tarData = path.join(graphDir, ".migration-tardata")
      const decompressed = createHash("sha256").update(gunzipSync(fs.readFileSync(tarData))).digest("hex")
      assert.equal(decompressed, layer.migration_tardata_sha256_decompressed)
      const linked = fs.statSync(tarData).ino === fs.statSync(path.join(graphDir, "tar-data.json.gz"), { throwIfNoEntry: false })?.ino
      assert.equal(linked, layer.migration_tardata_hardlinked)
      for (const helper of [".migration-diffid", ".migration-size"]) {
        assert.equal(fs.statSync(path.join(graphDir, helper)).mode & 0o777, 0o600, `${helper} mode`)
      }
    })
  }
}
