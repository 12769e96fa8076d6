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
import { StagedWrites } from "../src/store/StagedWrites.ts"
import { syncFileSystem } from "../src/platform/SyncFileSystem.ts"
import { TEMPORARY_PREFIX } from "../src/store/StoreFiles.ts"

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

test("an empty or absent collection is staged whole: nothing at its name before commit, every entry after, one rename, no temporaries", async () => {
  const dir = scratch()
  try {
    const content = path.join(dir, "imagedb", "content", "sha256")
    const metadata = path.join(dir, "imagedb", "metadata", "sha256")
    fs.mkdirSync(metadata, { recursive: true, mode: 0o700 }) // there and empty: replaced, keeping its mode
    const writes = new StagedWrites([dir])
    writes.stageCollection(content, 0o700)
    writes.stageCollection(metadata, 0o755)
    for (let i = 0; i < 50; i++) writes.writeFile(path.join(content, `c${i}`), `config ${i}`, 0o600)
    writes.writeFile(path.join(content, "c7"), "config 7 again", 0o600, true)
    writes.makeDirectory(path.join(metadata, "m1"), 0o700)
    writes.writeFile(path.join(metadata, "m1", "parent"), "sha256:p", 0o600)
    const layer = path.join(metadata, "layer")
    const work = writes.makeNewDirectory(layer, () => assert.fail("a staged collection needs no work directory"))
    fs.writeFileSync(path.join(work, "diff"), "d")
    writes.stageNewDirectory(layer, work)
    assert.equal(fs.existsSync(content), false, "nothing at the collection's name before commit")
    assert.deepEqual(fs.readdirSync(metadata), [])
    assert.ok(writes.isStaged(path.join(content, "c3")) && writes.isStaged(layer) && writes.isStaged(path.join(metadata, "m1", "parent")))
    assert.equal(new TextDecoder().decode(writes.stagedBytes(path.join(content, "c7"))), "config 7 again")
    assert.equal(writes.pending, 0, "entries of a collection staged whole need no rename each")
    await writes.commitInParallel()
    assert.equal(fs.readdirSync(content).length, 50)
    assert.equal(fs.readFileSync(path.join(content, "c7"), "utf8"), "config 7 again", "the last write wins")
    assert.equal(fs.readFileSync(path.join(content, "c49"), "utf8"), "config 49")
    assert.equal(fs.statSync(path.join(content, "c1")).mode & 0o777, 0o600 & ~process.umask())
    assert.equal(fs.statSync(content).mode & 0o777, 0o700 & ~process.umask())
    assert.equal(fs.statSync(metadata).mode & 0o777, 0o700, "an empty collection replaced keeps its mode")
    assert.equal(fs.readFileSync(path.join(metadata, "m1", "parent"), "utf8"), "sha256:p")
    assert.equal(fs.readFileSync(path.join(layer, "diff"), "utf8"), "d")
    assert.deepEqual(fs.readdirSync(path.join(dir, "imagedb")).sort(), ["content", "metadata"], "no temporary left")
    assert.deepEqual(fs.readdirSync(path.join(dir, "imagedb", "content")), ["sha256"])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("a collection with entries already takes new ones one by one; one nothing went into is not made", () => {
  const dir = scratch()
  try {
    const content = path.join(dir, "content")
    fs.mkdirSync(content)
    fs.writeFileSync(path.join(content, "old"), "old")
    const unused = path.join(dir, "distribution", "sha256")
    const writes = new StagedWrites([dir])
    writes.stageCollection(content, 0o700)
    writes.stageCollection(unused, 0o755)
    writes.writeFile(path.join(content, "new"), "new", 0o600)
    assert.equal(writes.pending, 1, "a collection with entries is not staged whole")
    const layer = path.join(content, "layer")
    const work = writes.makeNewDirectory(layer, () => {
      const made = path.join(dir, `${TEMPORARY_PREFIX}work`)
      fs.mkdirSync(made)
      return made
    })
    assert.equal(work, path.join(dir, `${TEMPORARY_PREFIX}work`))
    writes.stageNewDirectory(layer, work)
    assert.deepEqual(fs.readdirSync(content).filter((name) => !name.startsWith(TEMPORARY_PREFIX)), ["old"])
    writes.commit()
    assert.deepEqual(fs.readdirSync(content).sort(), ["layer", "new", "old"])
    assert.equal(fs.existsSync(unused), false, "an absent collection nothing went into stays absent")
    assert.deepEqual(fs.readdirSync(path.join(dir, "distribution")), [], "and its temporary is gone")
    assert.deepEqual(fs.readdirSync(dir).sort(), ["content", "distribution"])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("a batch killed before commit leaves its collections only as temporaries beside them", () => {
  const dir = scratch()
  try {
    const content = path.join(dir, "content")
    const writes = new StagedWrites([dir])
    writes.stageCollection(content, 0o700)
    writes.writeFile(path.join(content, "c"), "c", 0o600)
    // No commit: what a kill leaves. The final name is absent; the rest starts with the prefix a re-run sweeps.
    assert.equal(fs.existsSync(content), false)
    const names = fs.readdirSync(dir)
    assert.equal(names.length, 1)
    assert.ok(names[0]!.startsWith(TEMPORARY_PREFIX), names[0]!)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
