/**
 * `migrate` against the goldens (every file Docker's migration wrote, mode
 * and content, and nothing else), and its safety: re-runs, kill-and-resume,
 * checksums-then-migrate, a live daemon, bad input.
 */
import assert from "node:assert/strict"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { extractGolden, isRoot, makeGraph, repo, runCli, snapshot, startCli, tempDir } from "./support/cli.ts"
import { differences, type Expected } from "./support/golden.ts"

const NEEDS_ROOT = "needs root: the fixtures hold device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** migrate golden tests NOT RUN: ${NEEDS_ROOT} ***\n`)

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  test(`${driver}: migrate writes exactly Docker's files (image store, layer store, containers, tags, markers)`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
    const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens", driver, "expected.json"), "utf8")) as Expected
    const root = extractGolden(driver)
    const result = runCli(["migrate", "--graph", root, "--json"])
    assert.equal(result.code, 1, "images whose migration fails (as in the golden) make exit code 1")
    assert.deepEqual(differences(root, expected), [])
    const report = JSON.parse(result.stdout) as { images: Array<{ id: string; status: string; imageId?: string }> }
    for (const [v1, imageId] of Object.entries(expected.migration_v1_images)) {
      assert.equal(report.images.find((i) => i.id === v1)?.imageId, imageId, `image ID of ${v1}`)
    }
    assert.equal(fs.existsSync(path.join(root, "image", ".cas-migrator.lock")), false, "lock left behind")

    const before = snapshot(root)
    assert.equal(runCli(["migrate", "--graph", root]).code, 1)
    assert.deepEqual([...snapshot(root)].filter(([p, v]) => before.get(p) !== v), [], "a second migrate changed files")
  })
}

const storeFiles = (root: string) =>
  new Map([...snapshot(root)]
    .filter(([p]) => p.startsWith("image/") || p.startsWith(".migration") || p.endsWith("config.v2.json") || /\/\.migration-/.test(p))
    .map(([p, v]) => [p, v.split(" ").filter((_, i) => i !== 2 && i !== 3).join(" ")]))

test("checksums first, then migrate, gives the same files as migrate alone", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const alone = extractGolden("overlay")
  const twoSteps = extractGolden("overlay")
  runCli(["migrate", "--graph", alone])
  assert.equal(runCli(["checksums", "--graph", twoSteps]).code, 0)
  runCli(["migrate", "--graph", twoSteps])
  assert.deepEqual(storeFiles(twoSteps), storeFiles(alone))
})

test("migrate runs killed with SIGKILL at random moments, then re-run, end with the files of an uninterrupted run", { skip: isRoot ? false : NEEDS_ROOT }, async () => {
  const reference = extractGolden("vfs")
  runCli(["migrate", "--graph", reference])
  const victim = extractGolden("vfs")
  for (let attempt = 0; attempt < 6; attempt++) {
    const child = startCli(["migrate", "--graph", victim])
    await new Promise((resolve) => setTimeout(resolve, 30 + Math.floor(Math.random() * 400)))
    child.kill("SIGKILL")
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on("exit", resolve)))
  }
  const last = runCli(["migrate", "--graph", victim])
  assert.equal(last.code, 1, last.stderr) // the golden's failing images, nothing else
  const [got, want] = [storeFiles(victim), storeFiles(reference)]
  assert.deepEqual([...got].filter(([p, v]) => want.get(p) !== v), [])
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort())
})

const fakeDaemon = (args: Array<string>): ChildProcess =>
  spawn("python3", ["-c", `import os, sys; os.execv(sys.executable, ${JSON.stringify(["dockerd", "-c", "import time; time.sleep(60)", ...args])})`], { stdio: "ignore" })

/** Until the fake daemon has exec'd (its command line names dockerd): on a loaded machine that takes more than a moment. */
const untilExeced = async (daemon: ChildProcess) => {
  for (let waited = 0; waited < 20_000; waited += 50) {
    const cmdline = fs.readFileSync(`/proc/${daemon.pid}/cmdline`, "latin1").split("\0")
    if (cmdline[0] === "dockerd") return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error("the fake dockerd did not start within 20 s")
}

test("migrate refuses to run while a Docker daemon uses the root, unless --force", async () => {
  const root = path.join(tempDir("live"), "docker")
  makeGraph(root, "vfs", ["--size", "1MiB", "--layers", "1"])
  const daemon = fakeDaemon([`--data-root=${root}`])
  try {
    await untilExeced(daemon)
    const refused = runCli(["migrate", "--graph", root])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /Docker daemon uses this root/)
    assert.equal(fs.existsSync(path.join(root, "image")), false, "nothing may be written when refusing")
    assert.equal(runCli(["migrate", "--graph", root, "--force"]).code, 0)
  } finally {
    daemon.kill("SIGKILL")
  }
  const other = fakeDaemon(["--data-root=/somewhere/else"])
  try {
    await untilExeced(other)
    const second = path.join(tempDir("other"), "docker")
    makeGraph(second, "vfs", ["--size", "1MiB", "--layers", "1"])
    assert.equal(runCli(["migrate", "--graph", second]).code, 0, "a daemon on another root is no reason to refuse")
  } finally {
    other.kill("SIGKILL")
  }
})

test("a live lock of another migrator is refused; a stale one is taken over", () => {
  const root = path.join(tempDir("lock"), "docker")
  makeGraph(root, "vfs", ["--size", "1MiB", "--layers", "1"])
  fs.mkdirSync(path.join(root, "image"))
  fs.writeFileSync(path.join(root, "image/.cas-migrator.lock"), String(process.pid))
  const refused = runCli(["migrate", "--graph", root])
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /another migrator/)
  fs.writeFileSync(path.join(root, "image/.cas-migrator.lock"), "999999999")
  assert.equal(runCli(["migrate", "--graph", root]).code, 0)
  assert.equal(fs.existsSync(path.join(root, "image/.cas-migrator.lock")), false)
})

test("bad input: a parent cycle, a bad parent_id, bad JSON and bad tags fail their items only", () => {
  const root = path.join(tempDir("bad-migrate"), "docker")
  const { layers } = makeGraph(root, "vfs", ["--size", "1MiB", "--layers", "5"])
  const [base, a, b, badParent, badJson] = layers.map((l) => l.id)
  const json = (id: string | undefined) => path.join(root, "graph", id!, "json")
  const edit = (id: string | undefined, change: (v: Record<string, unknown>) => void) => {
    const value = JSON.parse(fs.readFileSync(json(id), "utf8")) as Record<string, unknown>
    change(value)
    fs.writeFileSync(json(id), JSON.stringify(value))
  }
  edit(a, (v) => void (v.parent = b))
  edit(b, (v) => void (v.parent = a))
  edit(badParent, (v) => {
    delete v.parent
    v.parent_id = "no-algorithm"
  })
  fs.writeFileSync(json(badJson), "{not json")
  fs.writeFileSync(path.join(root, "repositories-vfs"), JSON.stringify({
    Repositories: { "Bad/Name": { latest: base }, good: { "bad tag!": base, ok: base, cycle: a } },
  }))
  fs.mkdirSync(path.join(root, "containers"))
  const result = runCli(["migrate", "--graph", root, "--json"])
  assert.equal(result.code, 1)
  const report = JSON.parse(result.stdout) as {
    images: Array<{ id: string; status: string; error?: string }>
    tags: Array<{ name: string; tag: string; status: string; reason?: string }>
  }
  const image = (id: string | undefined) => report.images.find((i) => i.id === id)
  assert.equal(image(base)?.status, "migrated")
  assert.match(image(a)?.error ?? "", /parent cycle/)
  assert.match(image(b)?.error ?? "", /parent cycle/)
  assert.match(image(badParent)?.error ?? "", /not a digest/)
  assert.equal(image(badJson)?.status, "failed")
  const tag = (name: string, t: string) => report.tags.find((x) => x.name === name && x.tag === t)
  assert.equal(tag("good", "ok")?.status, "added")
  assert.match(tag("Bad/Name", "latest")?.reason ?? "", /lowercase/)
  assert.match(tag("good", "bad tag!")?.reason ?? "", /invalid tag format/)
  assert.match(tag("good", "cycle")?.reason ?? "", /not migrated/)
  const repositories = JSON.parse(fs.readFileSync(path.join(root, "image/vfs/repositories.json"), "utf8"))
  assert.deepEqual(Object.keys(repositories.Repositories), ["good"])
  void spawnSync
})
