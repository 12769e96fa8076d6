/**
 * Image configs (and so image IDs) byte for byte as Docker 1.10 built them,
 * pinned by every migrated image of the four goldens, and the rules one by one.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { formatGoTime, parseGoTime } from "../src/go/GoTime.ts"
import { compactJson, objectMembers } from "../src/go/GoJsonBytes.ts"
import { dockerVersionLessThan, type History, historyFromConfig, makeImageConfig } from "../src/store/ImageConfig.ts"
import { repo, tempDir } from "./support/cli.ts"

const utf8 = new TextEncoder()
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

interface ExpectedImage {
  readonly migrated: boolean
  readonly image_id?: string
  readonly diff_ids?: ReadonlyArray<string>
  readonly parent_image_id?: string | null
}

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  test(`${driver}: every migrated image gets Docker's config bytes and image ID`, () => {
    const golden = path.join(repo, "test/goldens", driver)
    const expected = JSON.parse(fs.readFileSync(path.join(golden, "expected.json"), "utf8")) as {
      readonly images: Record<string, ExpectedImage>
      readonly migration_v1_images: Record<string, string>
      readonly image_dir_manifest: { readonly files: Record<string, { readonly text?: string }> }
    }
    // Only the v1 JSON files are needed: no root required to extract them.
    const root = tempDir(`images-${driver}`)
    const extracted = spawnSync("tar", ["-xzf", path.join(golden, "fixture.tar.gz"), "-C", root, "--wildcards", "./graph/*/json"])
    assert.equal(extracted.status, 0, String(extracted.stderr))
    const v1Of = new Map(Object.entries(expected.migration_v1_images).map(([v1, id]) => [id, v1]))
    const histories = new Map<string, Array<History>>()
    const historyOf = (v1: string): Array<History> => {
      const known = histories.get(v1)
      if (known !== undefined) return known
      const parent = expected.images[v1]!.parent_image_id
      const own = historyFromConfig(fs.readFileSync(path.join(root, "graph", v1, "json")))
      const history = [...(parent ? historyOf(v1Of.get(parent)!) : []), own]
      histories.set(v1, history)
      return history
    }
    let checked = 0
    for (const [v1, image] of Object.entries(expected.images)) {
      if (!image.migrated) continue
      const config = makeImageConfig(fs.readFileSync(path.join(root, "graph", v1, "json")), image.diff_ids!, historyOf(v1))
      const want = expected.image_dir_manifest.files[`image/${driver}/imagedb/content/sha256/${image.image_id!.slice(7)}`]?.text
      assert.equal(text(config), want, `config of ${v1}`)
      assert.equal(`sha256:${createHash("sha256").update(config).digest("hex")}`, image.image_id)
      checked++
    }
    assert.ok(checked >= 10, `only ${checked} images checked`)
  })
}

test("created: null fails with Go 1.5's time parser (the nullcreated golden)", () => {
  assert.throws(() => historyFromConfig(utf8.encode('{"created":null}')), /parsing time "null"/)
})

test("no created key gives Go's zero time in history", () => {
  assert.equal(formatGoTime(historyFromConfig(utf8.encode("{}")).created), "0001-01-01T00:00:00Z")
})

test("created is printed as RFC 3339 with trailing fraction zeros trimmed and +00:00 as Z", () => {
  assert.equal(formatGoTime(parseGoTime("2015-06-01T10:00:00.120000+02:00")), "2015-06-01T10:00:00.12+02:00")
  assert.equal(formatGoTime(parseGoTime("2015-06-01T10:00:00.000000000+00:00")), "2015-06-01T10:00:00Z")
  assert.equal(formatGoTime(parseGoTime("2015-12-01T22:33:44.000000001Z")), "2015-12-01T22:33:44.000000001Z")
  assert.throws(() => parseGoTime("2015-02-30T00:00:00Z"), /day out of range/)
  assert.throws(() => parseGoTime("2015-06-01 10:00:00Z"))
})

test("docker_version below 1.8.3 (\"\", pre-releases) goes through the V1Image struct", () => {
  assert.equal(dockerVersionLessThan("1.8.2", "1.8.3"), true)
  assert.equal(dockerVersionLessThan("", "1.8.3"), true)
  assert.equal(dockerVersionLessThan("1.8.3-rc1", "1.8.3"), true)
  assert.equal(dockerVersionLessThan("1.8.3", "1.8.3"), false)
  assert.equal(dockerVersionLessThan("1.10.0", "1.8.3"), false)
  const old = makeImageConfig(utf8.encode('{"docker_version":"1.8.2","unknown":1,"Size":5,"created":"2015-06-01T10:00:00Z"}'), [], [])
  assert.doesNotMatch(text(old), /unknown/)
  assert.match(text(old), /"container_config":\{"Hostname":""/)
  const recent = makeImageConfig(utf8.encode('{"docker_version":"1.9.1","unknown":1,"Size":5}'), [], [])
  assert.match(text(recent), /"unknown":1/)
  assert.doesNotMatch(text(recent), /"Size"/)
})

test("raw values keep numbers and escapes as written, compacted with HTML-safe escaping", () => {
  assert.equal(text(compactJson(utf8.encode('[ 1.50, 2e10, -0, 1E400, "a<b>&\u2028", "\\u0026" ]'))), '[1.50,2e10,-0,1E400,"a\\u003cb\\u003e\\u0026\\u2028","\\u0026"]')
})

test("keys are unescaped, the last duplicate wins, and they are sorted", () => {
  const members = objectMembers(utf8.encode('{"x\\u002dkey":1,"b":1,"b":2}'))
  assert.deepEqual([...members.keys()].sort(), ["b", "x-key"])
  assert.equal(text(members.get("b")!), "2")
  const config = text(makeImageConfig(utf8.encode('{"docker_version":"1.9.1","z":1,"x\\u002dkey":2,"a":3}'), ["sha256:" + "0".repeat(64)], []))
  assert.ok(config.indexOf('"a"') < config.indexOf('"history"') && config.indexOf('"rootfs"') < config.indexOf('"x-key"'))
})
