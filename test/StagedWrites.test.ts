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

test("commitInParallel leaves what commit leaves: many targets in place, the last file staged for a name, the first directory, no temporaries", async () => {
  const dir = scratch()
  try {
    const writes = new StagedWrites([dir])
    for (let i = 0; i < 200; i++) {
      fs.mkdirSync(path.join(dir, `d${i % 7}`), { recursive: true })
      writes.writeFile(path.join(dir, `d${i % 7}`, `f${i % 50}`), `v${i}`, 0o644)
    }
    const staged = (name: string, content: string) => {
      const work = path.join(dir, `${TEMPORARY_PREFIX}${name}`)
      fs.mkdirSync(work)
      fs.writeFileSync(path.join(work, "diff"), content)
      writes.stageDirectory(work, path.join(dir, "layer"))
    }
    staged("first", "first")
    staged("second", "second")
    await writes.commitInParallel(8)
    for (let j = 0; j < 50; j++) {
      // f<j> in d<i % 7> for i = j, j + 50, ...: the last such i wins.
      const last = new Map<string, number>()
      for (let i = j; i < 200; i += 50) last.set(`d${i % 7}`, i)
      for (const [d, i] of last) assert.equal(fs.readFileSync(path.join(dir, d, `f${j}`), "utf8"), `v${i}`)
    }
    assert.equal(fs.readFileSync(path.join(dir, "layer", "diff"), "utf8"), "first")
    const left: Array<string> = []
    const walk = (at: string) => {
      for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
        if (entry.name.startsWith(TEMPORARY_PREFIX)) left.push(entry.name)
        if (entry.isDirectory()) walk(path.join(at, entry.name))
      }
    }
    walk(dir)
    assert.deepEqual(left, [])
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
