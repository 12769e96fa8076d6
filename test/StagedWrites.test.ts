/**
 * The batched durability of store files: nothing staged is at its final name
 * before `commit` (a crash before it leaves only temporaries, which a re-run
 * sweeps), everything is after it, and the file system was synced in between.
 */
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { StagedWrites } from "../src/StagedWrites.ts"
import { syncFileSystem } from "../src/platform/SyncFileSystem.ts"
import { TEMPORARY_PREFIX } from "../src/StoreFiles.ts"

const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), "migrate-speed-staged-"))

test("staged files are only temporaries until commit, then at their names with their bytes and modes", () => {
  const dir = scratch()
  try {
    const writes = new StagedWrites([dir])
    const target = path.join(dir, "config")
    writes.writeFile(target, "first", 0o600, true)
    writes.writeFile(target, "second", 0o600, true)
    assert.equal(fs.existsSync(target), false, "a staged file must not be at its name before commit")
    assert.ok(writes.isStaged(target))
    assert.equal(new TextDecoder().decode(writes.stagedBytes(target)), "second")
    assert.equal(fs.readdirSync(dir).filter((name) => name.startsWith(TEMPORARY_PREFIX)).length, 2)
    writes.commit()
    assert.equal(fs.readFileSync(target, "utf8"), "second", "the last write wins")
    assert.equal(fs.statSync(target).mode & 0o777, 0o600 & ~process.umask())
    assert.deepEqual(fs.readdirSync(dir), ["config"], "no temporary left after commit")
    assert.equal(writes.isStaged(target), false)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("a staged directory is renamed into place at commit; one already there wins and the staged one goes", () => {
  const dir = scratch()
  try {
    const writes = new StagedWrites([dir])
    const fresh = path.join(dir, "work-1")
    fs.mkdirSync(fresh)
    fs.writeFileSync(path.join(fresh, "diff"), "a")
    writes.stageDirectory(fresh, path.join(dir, "layer-a"))
    const loser = path.join(dir, "work-2")
    fs.mkdirSync(loser)
    fs.writeFileSync(path.join(loser, "diff"), "new")
    fs.mkdirSync(path.join(dir, "layer-b"))
    fs.writeFileSync(path.join(dir, "layer-b", "diff"), "old")
    writes.stageDirectory(loser, path.join(dir, "layer-b"))
    assert.equal(fs.existsSync(path.join(dir, "layer-a")), false)
    writes.commit()
    assert.equal(fs.readFileSync(path.join(dir, "layer-a", "diff"), "utf8"), "a")
    assert.equal(fs.readFileSync(path.join(dir, "layer-b", "diff"), "utf8"), "old")
    assert.deepEqual(fs.readdirSync(dir).sort(), ["layer-a", "layer-b"])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("syncFileSystem syncs a directory's file system and names a path that is not there", () => {
  const dir = scratch()
  try {
    syncFileSystem(dir)
    assert.throws(() => syncFileSystem(path.join(dir, "missing")), /ENOENT|no such file/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
