/**
 * The goldens (legacy graphs migrated by Docker's own Go code) are the judge:
 * every layer, whether through tar-split, regenerated (fallback) or already
 * done, gets exactly the expected diffID, size and `.migration-tardata`
 * (decompressed bytes, hard link or not, file modes).
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
  readonly fallback_reason?: string
}

interface Report {
  readonly exitCode: number
  readonly layers: ReadonlyArray<{
    readonly id: string
    readonly status: string
    readonly path?: string
    readonly error?: string
    readonly fallbackReason?: string
    readonly fallbackKind?: string
  }>
}

/** The kind of tar-split failure behind the message Docker logged. */
const kindOfDockerReason = (reason: string): string =>
  /tar-data\.json\.gz: no such file|unexpected EOF|gzip/.test(reason)
    ? "Unreadable"
    : /invalid character|cannot unmarshal/.test(reason)
    ? "BadEntry"
    : /integrity checksum failed/.test(reason)
    ? "CrcMismatch"
    : /no such file or directory/.test(reason)
    ? "MissingFile"
    : `unknown: ${reason}`

const NEEDS_ROOT = "needs root: the fixtures hold device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** golden tests NOT RUN: ${NEEDS_ROOT} ***\n`)

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  const expected = JSON.parse(
    fs.readFileSync(path.join(repo, "test/goldens", driver, "expected.json"), "utf8"),
  ) as {
    readonly layers: Record<string, ExpectedLayer>
    readonly other_outputs: Record<string, { readonly mode: string }>
  }
  let run: { root: string; report: Report; code: number | null } | undefined
  const checksums = () => {
    if (run === undefined) {
      const root = extractGolden(driver)
      const result = runCli(["checksums", "--graph", root, "--json"])
      run = { root, report: JSON.parse(result.stdout) as Report, code: result.code }
    }
    return run
  }

  test(`${driver}: checksums exits 0: every layer done, fallback ones regenerated`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
    const { report, code } = checksums()
    assert.equal(code, 0)
    assert.equal(report.exitCode, 0)
  })

  for (const [id, layer] of Object.entries(expected.layers)) {
    const name = `${driver}: ${layer.path} layer ${id.slice(0, 12)} (${layer.role.slice(0, 90)})`
    test(name, { skip: isRoot ? false : NEEDS_ROOT }, () => {
      const { root, report } = checksums()
      const graphDir = path.join(root, "graph", id)
      const reported = report.layers.find((entry) => entry.id === id)
      assert.ok(reported, "layer missing from the --json report")
      assert.equal(reported.status, "done")
      if (layer.path === "fallback") {
        assert.ok((reported.fallbackReason ?? "").length > 0, "fallback without a reason")
        assert.equal(reported.fallbackKind, kindOfDockerReason(layer.fallback_reason ?? ""), `Docker said: ${layer.fallback_reason}`)
      }
      assert.equal(reported.path, layer.path)
      assert.equal(fs.readFileSync(path.join(graphDir, ".migration-diffid"), "utf8"), layer.diff_id)
      assert.equal(Number(fs.readFileSync(path.join(graphDir, ".migration-size"), "utf8")), layer.size)
      const tarData = path.join(graphDir, ".migration-tardata")
      const decompressed = createHash("sha256").update(gunzipSync(fs.readFileSync(tarData))).digest("hex")
      assert.equal(decompressed, layer.migration_tardata_sha256_decompressed)
      const linked = fs.statSync(tarData).ino === fs.statSync(path.join(graphDir, "tar-data.json.gz"), { throwIfNoEntry: false })?.ino
      assert.equal(linked, layer.migration_tardata_hardlinked)
      for (const helper of [".migration-diffid", ".migration-size", ".migration-tardata"]) {
        const want = expected.other_outputs[`graph/${id}/${helper}`]?.mode
        assert.equal((fs.statSync(path.join(graphDir, helper)).mode & 0o777).toString(8).padStart(4, "0"), want, `${helper} mode`)
      }
    })
  }
}
