/**
 * `checksums` on generated graphs: the self-check (diffID = SHA-256 of the
 * generated tar, for every driver), idempotence, kill-and-resume, writes
 * confined to helper files, and bad input that fails one layer only.
 */
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { gzipSync } from "node:zlib"
import { changedPaths, makeGraph, runCli, runKilledAfter, snapshot, tempDir } from "./support/cli.ts"

interface Report {
  readonly exitCode: number
  readonly layers: ReadonlyArray<{
    readonly id: string
    readonly status: string
    readonly path?: string
    readonly diffId?: string
    readonly size?: number
    readonly reason?: string
    readonly error?: string
    readonly fallbackReason?: string
    readonly fallbackKind?: string
  }>
  readonly ignored: ReadonlyArray<string>
}

const checksumsJson = (root: string, ...extra: Array<string>): { code: number | null; report: Report } => {
  const result = runCli(["checksums", "--graph", root, "--json", ...extra])
  return { code: result.code, report: JSON.parse(result.stdout) as Report }
}

const HELPERS = new Set([".migration-diffid", ".migration-size", ".migration-tardata"])

for (const driver of ["vfs", "overlay", "aufs", "btrfs"]) {
  test(`self-check on ${driver}: every diffID is the SHA-256 of the generated tar, and only helper files are written`, () => {
    const root = path.join(tempDir(`self-${driver}`), "docker")
    const expected = makeGraph(root, driver, ["--size", "3MiB", "--layers", "3", "--big-files", "1", "--big-size", "2MiB"])
    const before = snapshot(root)
    const { code, report } = checksumsJson(root)
    assert.equal(code, 0)
    for (const layer of expected.layers) {
      const got = report.layers.find((entry) => entry.id === layer.id)
      assert.deepEqual(
        { status: got?.status, path: got?.path, diffId: got?.diffId, size: got?.size },
        { status: "done", path: "tarsplit", diffId: layer.diffId, size: layer.size },
      )
      assert.equal(fs.readFileSync(path.join(root, "graph", layer.id, ".migration-diffid"), "utf8"), layer.diffId)
    }
    const changed = changedPaths(before, snapshot(root))
    // Helper files, and the journal that lets rollback --checksums remove them.
    const outside = changed.filter((p) =>
      !(p.startsWith("graph/") && HELPERS.has(path.basename(p)) && p.split("/").length === 3) && p !== ".cas-migrator-journal"
    )
    assert.deepEqual(outside, [], "written outside graph/<id>/ helper files (or layer data touched)")
    assert.equal(changed.length, expected.layers.length * 3 + 1) // three helper files a layer, and the journal
  })
}

test("a second run changes nothing and reports the layers as already present", () => {
  const root = path.join(tempDir("rerun"), "docker")
  makeGraph(root, "vfs", ["--size", "2MiB", "--layers", "3"])
  assert.equal(checksumsJson(root).code, 0)
  const before = snapshot(root)
  const { code, report } = checksumsJson(root)
  assert.equal(code, 0)
  assert.deepEqual(report.layers.map((l) => l.path), ["preexisting", "preexisting", "preexisting"])
  assert.deepEqual(changedPaths(before, snapshot(root)), [])
})

test("runs killed with SIGKILL at random moments, then re-run, end with the files of an uninterrupted run", async () => {
  const base = tempDir("kill")
  const reference = path.join(base, "reference")
  makeGraph(reference, "overlay", ["--size", "48MiB", "--layers", "12", "--big-files", "4", "--big-size", "8MiB"])
  const victim = path.join(base, "victim")
  fs.cpSync(reference, victim, { recursive: true, verbatimSymlinks: true })
  assert.equal(checksumsJson(reference).code, 0)
  let killedMidway = 0
  for (let attempt = 0; attempt < 6; attempt++) {
    if (await runKilledAfter(["checksums", "--graph", victim, "--jobs", "2"], 20 + Math.floor(Math.random() * 250))) killedMidway++
  }
  assert.ok(killedMidway > 0, "no run was killed before it finished: the graph is too small for this machine")
  assert.equal(checksumsJson(victim).code, 0)
  const helpers = (root: string) =>
    new Map(
      [...snapshot(root)]
        .filter(([p]) => p.startsWith("graph/"))
        .map(([p, v]) => [p, v.split(" ").filter((_, i) => i !== 2 && i !== 3).join(" ")]),
    )
  const got = helpers(victim)
  assert.deepEqual([...got.keys()].filter((p) => p.endsWith(".tmp")), [], "temporary files left behind")
  assert.deepEqual(got, helpers(reference))
})

test("bad input: broken tar-split falls back with its reason; what Docker could not read fails that layer only", () => {
  const root = path.join(tempDir("bad"), "docker")
  const { layers } = makeGraph(root, "vfs", ["--size", "2MiB", "--layers", "9"])
  const [truncated, garbage, badJson, missingDir, parentGone, escaping, notRegular, symlinkOut, good] = layers.map((l) => l.id)
  const graph = (id: string | undefined, file: string) => path.join(root, "graph", id!, file)
  const layerRoot = (id: string | undefined) => path.join(root, "vfs/dir", id!)
  const tarData = fs.readFileSync(graph(truncated, "tar-data.json.gz"))
  fs.writeFileSync(graph(truncated, "tar-data.json.gz"), tarData.subarray(0, tarData.length >> 1))
  fs.writeFileSync(graph(garbage, "tar-data.json.gz"), gzipSync("this is not json\n"))
  fs.writeFileSync(graph(badJson, "json"), "{not json")
  fs.rmSync(layerRoot(missingDir), { recursive: true })
  fs.writeFileSync(graph(parentGone, "tar-data.json.gz"), gzipSync("garbage\n")) // its parent is missingDir
  const entry = (name: string) => `{"type":1,"name":"${name}","size":3,"payload":"AAAAAAAAAAA=","position":0}\n`
  fs.writeFileSync(graph(escaping, "tar-data.json.gz"), gzipSync(entry("../../../../etc/passwd")))
  fs.mkdirSync(path.join(layerRoot(notRegular), "a-directory"))
  fs.writeFileSync(graph(notRegular, "tar-data.json.gz"), gzipSync(entry("a-directory")))
  fs.symlinkSync("/etc", path.join(layerRoot(symlinkOut), "etc-link"))
  fs.writeFileSync(graph(symlinkOut, "tar-data.json.gz"), gzipSync(entry("etc-link/passwd")))
  fs.mkdirSync(path.join(root, "graph", "_tmp"))
  fs.mkdirSync(path.join(root, "graph", "0123456789ab"))

  const { code, report } = checksumsJson(root)
  assert.equal(code, 1)
  const byId = new Map(report.layers.map((l) => [l.id, l]))
  const fellBack = (id: string | undefined, kind: string, reason: RegExp) => {
    const layer = byId.get(id!)
    assert.deepEqual([layer?.status, layer?.path, layer?.fallbackKind], ["done", "fallback", kind], `${id}`)
    assert.match(layer?.fallbackReason ?? "", reason)
    assert.equal(fs.readFileSync(graph(id, ".migration-diffid"), "utf8"), layer?.diffId)
  }
  const failed = (id: string | undefined, reason: RegExp, message: RegExp) => {
    const layer = byId.get(id!)
    assert.equal(layer?.status, "failed", `${id} should fail`)
    assert.match(layer.reason ?? "", reason)
    assert.match(layer.error ?? "", new RegExp(id!))
    assert.match(layer.error ?? "", message)
    for (const helper of HELPERS) assert.equal(fs.existsSync(graph(id, helper)), false, `${helper} left behind`)
    assert.equal(fs.existsSync(graph(id, ".migration-tardata.tmp")), false, "temporary tar-split left behind")
  }
  fellBack(truncated, "Unreadable", /unexpected end of file|unexpected EOF/i)
  fellBack(garbage, "BadEntry", /JSON/)
  fellBack(escaping, "UnsafePath", /out of the layer/)
  fellBack(notRegular, "NotRegularFile", /not a regular file/)
  fellBack(symlinkOut, "UnsafePath", /absolute and leads out of the layer/)
  failed(badJson, /GraphError\.BadJson/, /json/)
  failed(missingDir, /DriverError\.NotFound/, /does not exist/)
  failed(parentGone, /FallbackError\.ParentMissing/, /tar-split failed .* regenerating its tar/)
  assert.equal(byId.get(good!)?.path, "tarsplit")
  assert.deepEqual([...report.ignored].sort(), ["0123456789ab", "_tmp"])
})

test("an unusable root is exit code 2 with a message naming it", () => {
  const missing = path.join(tempDir("missing"), "nope")
  const result = runCli(["checksums", "--graph", missing])
  assert.equal(result.code, 2)
  assert.match(result.stderr, new RegExp(`Cannot use Docker root ${missing}`))
})

test("a root holding two drivers' state is ambiguous and the error lists them", () => {
  const root = tempDir("ambiguous")
  for (const dir of ["graph", "aufs", "overlay", "vfs"]) fs.mkdirSync(path.join(root, dir))
  const result = runCli(["checksums", "--graph", root])
  assert.equal(result.code, 2)
  assert.match(result.stderr, /aufs, overlay/)
})

test("vfs state next to another driver's does not count, as in Docker 1.9", () => {
  const root = tempDir("prior")
  for (const dir of ["graph", "overlay", "vfs"]) fs.mkdirSync(path.join(root, dir))
  const { code, report } = checksumsJson(root)
  assert.equal(code, 0)
  assert.deepEqual(report.layers, [])
  assert.equal((report as unknown as { driver: string }).driver, "overlay")
})

test("bad usage is exit code 2", () => {
  assert.equal(runCli(["checksums", "--no-such-flag"]).code, 2)
  assert.equal(runCli(["checksums", "--jobs", "0", "--graph", tempDir("jobs")]).code, 2)
})
