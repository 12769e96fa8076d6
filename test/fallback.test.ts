/**
 * The fallback path: a layer's tar regenerated from its files as Docker 1.10
 * did. Exactness against Docker is pinned by the goldens (test/golden.test.ts);
 * here: our tar is a correct tar for GNU tar and Python's tarfile, its
 * tar-split reassembles to the same bytes, the run-dependent parts (PID in PAX
 * header names, whiteout times) behave as Docker's, and the fallback is
 * crash-safe and leaves no wrong helper file behind.
 */
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { gunzipSync } from "node:zlib"
import { makeCrc64Engine } from "../src/crc/Crc64Engine.ts"
import { LayerRoot } from "../src/tar/LayerPath.ts"
import { rawFiles } from "../src/platform/RawFiles.ts"
import { regenerateLayer } from "../src/tar/RegenerateLayer.ts"
import { decodeEntry, entryNameBytes, EntryType } from "../src/tar/TarSplit.ts"
import { assembleLayer } from "../src/tar/TarSplitAssembler.ts"
import { changedPaths, isRoot, makeGraph, runCli, sh, snapshot, startCli, tempDir } from "./support/cli.ts"

const engine = makeCrc64Engine()
const NEEDS_ROOT = "needs root: device nodes, foreign owners and security.capability xattrs"
if (!isRoot) console.warn(`\n*** fallback round-trip tests NOT RUN: ${NEEDS_ROOT} ***\n`)

/** A tree with every kind of entry the archiver meets (made with Python where names are not UTF-8). */
const makeTree = (root: string) => {
  fs.mkdirSync(root, { recursive: true })
  sh(`
    set -e; cd "$1"
    mkdir -p dir/sub "${"p".repeat(60)}/${"q".repeat(60)}" empty-dir
    printf '' > dir/empty; printf a > dir/one; head -c 512 /dev/urandom > dir/f512; head -c 513 /dev/urandom > dir/f513
    head -c 2097152 /dev/urandom > dir/big
    printf long > "${"p".repeat(60)}/${"q".repeat(60)}/split-by-ustar-prefix.txt"
    printf longer > "dir/${"n".repeat(150)}"
    printf uni > "dir/café-日本語.txt"
    ln -s "${"t".repeat(120)}" dir/long-link; ln -s ../dir/one dir/sub/rel-link; ln -s /nonexistent dir/dangling
    ln dir/one dir/hard-one; ln dir/one dir/sub/hard-two
    mknod dir/null c 1 3; mknod dir/loop b 259 70000; mkfifo dir/fifo
    printf owned > zz-owned; chown 3000000:5000000 zz-owned
    printf setuid > dir/setuid; chmod 4755 dir/setuid; chmod 1777 empty-dir
    touch -d '@1449050000.123456789' dir/one; touch -h -d '@-100' dir/dangling; touch -d '@-5.5' dir/f512
    python3 -c "import os; os.setxattr('dir/setuid', 'security.capability', bytes([1,0,0,2,0,4,0,0]+[0]*12)); os.setxattr('dir/one', 'user.ignored', b'x')"
    python3 -c "open(b'dir/raw-\\xff\\xfe-latin1-caf\\xe9.bin', 'wb').write(b'raw')"
  `, root)
}

/** Rebuilds the tar bytes from tar-split metadata and the files. */
const reassemble = (tarData: string, root: string): Uint8Array => {
  const parts: Array<Uint8Array> = []
  for (const line of new TextDecoder().decode(gunzipSync(fs.readFileSync(tarData))).split("\n")) {
    if (line === "") continue
    const entry = decodeEntry(JSON.parse(line))
    if (entry.type === EntryType.Segment && entry.payload !== null) parts.push(entry.payload)
    if (entry.type === EntryType.File && entry.size > 0) {
      const handle = new LayerRoot(root).open(entryNameBytes(entry))
      const content = new Uint8Array(entry.size)
      let at = 0
      while (at < entry.size) at += handle.read(content, at, entry.size - at)
      handle.close()
      parts.push(content)
    }
  }
  return new Uint8Array(Buffer.concat(parts))
}

/** Type, permissions, owner, size, whole-second mtime, content, link target and device of every path, by raw name. */
const describeTree = (root: string): Map<string, string> => {
  const out = new Map<string, string>()
  const walk = (dir: Uint8Array, relative: string) => {
    for (const name of rawFiles.readdir(dir)) {
      const full = new Uint8Array(Buffer.concat([dir, Buffer.from("/"), name]))
      const stat = rawFiles.lstat(full)!
      const key = relative + Buffer.from(name).toString("latin1")
      let content = ""
      if (stat.kind === "file") {
        const handle = rawFiles.openNoFollow(full)
        const buffer = new Uint8Array(stat.size)
        let at = 0
        while (at < stat.size) at += handle.read(buffer, at, stat.size - at)
        handle.close()
        content = createHash("sha256").update(buffer).digest("hex").slice(0, 16)
      }
      if (stat.kind === "symlink") content = Buffer.from(rawFiles.readlink(full)).toString("latin1")
      const seconds = stat.mtimeNs < 0n ? 0n : stat.mtimeNs / 1_000_000_000n
      const mtime = stat.kind === "directory" ? "" : String(seconds) // directory times change as entries are added
      out.set(key, `${stat.mode.toString(8)} ${stat.uid}:${stat.gid} ${stat.kind === "directory" ? "" : stat.size} ${mtime} ${stat.rdev} ${content}`)
      if (stat.kind === "directory") walk(full, key + "/")
    }
  }
  walk(new TextEncoder().encode(root), "")
  return out
}

test("after a base-256 field, Go 1.5's GNU magic hides a ustar prefix from GNU tar: kept, as Docker's diffIDs depend on it", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const base = tempDir("gnu-prefix")
  const root = path.join(base, "layer")
  const long = `${"p".repeat(60)}/${"q".repeat(60)}`
  sh(`set -e; mkdir -p "$1/$2"; printf x > "$1/a-owned"; chown 3000000 "$1/a-owned"; printf y > "$1/$2/file"`, root, long)
  const result = regenerateLayer({ root, parentRoot: undefined, layerFiles: "snapshot", tarDataOut: path.join(base, "t.gz") }, engine, () => {})
  const tar = reassemble(path.join(base, "t.gz"), root)
  assert.equal(createHash("sha256").update(tar).digest("hex"), result.sha256)
  fs.writeFileSync(path.join(base, "layer.tar"), tar)
  const listing = sh(`tar -tf "$1"`, path.join(base, "layer.tar")).trim().split("\n")
  assert.ok(listing.includes("file"), `GNU tar should read the bare name (Go 1.5's quirk): ${listing.join(", ")}`)
  const names = new TextDecoder().decode(gunzipSync(fs.readFileSync(path.join(base, "t.gz"))))
  assert.ok(names.includes(`"name":"${long}/file"`), "tar-split names the entry with its prefix, as its reader does")
})

test("round trip (no ustar prefix after a base-256 field): our tar of every entry kind extracts with GNU tar to the same tree, and its tar-split reassembles to the same bytes", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const base = tempDir("roundtrip")
  const root = path.join(base, "layer")
  makeTree(root)
  const tarData = path.join(base, "tardata.gz")
  const result = regenerateLayer({ root, parentRoot: undefined, layerFiles: "snapshot", tarDataOut: tarData }, engine, () => {})
  const tar = reassemble(tarData, root)
  assert.equal(createHash("sha256").update(tar).digest("hex"), result.sha256)
  assert.equal(tar.length, result.tarBytes)
  fs.writeFileSync(path.join(base, "layer.tar"), tar)

  const extracted = path.join(base, "extracted")
  fs.mkdirSync(extracted)
  sh(`tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$1" -C "$2"`, path.join(base, "layer.tar"), extracted)
  const [got, want] = [describeTree(extracted), describeTree(root)]
  assert.deepEqual([...got].filter(([p, v]) => want.get(p) !== v), [])
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort())
  const capability = sh(`python3 -c "import os,sys; print(os.getxattr(sys.argv[1], 'security.capability').hex())" "$1"`, path.join(extracted, "dir/setuid"))
  assert.equal(capability.trim(), "0100000200040000" + "00".repeat(12))
  assert.equal(fs.statSync(path.join(extracted, "dir/hard-one")).ino, fs.statSync(path.join(extracted, "dir/one")).ino)

  const listed = sh(`python3 -c "
import sys, tarfile
for m in tarfile.open(sys.argv[1]): print(m.name.encode('utf-8', 'surrogateescape').hex())" "$1"`, path.join(base, "layer.tar"))
  const names = listed.trim().split("\n").map((hex) => Buffer.from(hex, "hex").toString("latin1").replace(/\/$/, ""))
  assert.deepEqual(names.sort(), [...describeTree(root).keys()].sort())
  const size = [...describeTree(root).entries()].length
  assert.ok(size >= 24, `only ${size} entries: the tree lost some kinds`)
})

/** Removes every layer's tar-split metadata, as for images pulled before Docker 1.8. */
const dropTarSplit = (root: string) => {
  for (const id of fs.readdirSync(path.join(root, "graph"))) fs.rmSync(path.join(root, "graph", id, "tar-data.json.gz"), { force: true })
}

interface Report {
  readonly exitCode: number
  readonly layers: ReadonlyArray<{ readonly id: string; readonly status: string; readonly path?: string; readonly diffId?: string; readonly fallbackKind?: string }>
}
const checksumsJson = (root: string) => {
  const result = runCli(["checksums", "--graph", root, "--json"])
  return { code: result.code, report: JSON.parse(result.stdout) as Report, pid: result.pid }
}

const layerDir = (driver: string, id: string) =>
  driver === "vfs" ? `vfs/dir/${id}` : driver === "overlay" ? `overlay/${id}/root` : driver === "aufs" ? `aufs/diff/${id}` : `btrfs/subvolumes/${id}`

for (const driver of ["vfs", "overlay", "aufs", "btrfs"]) {
  test(`fallback on ${driver}: every layer regenerated, and its .migration-tardata reassembles to its diffID`, async () => {
    const root = path.join(tempDir(`fallback-${driver}`), "docker")
    const { layers } = makeGraph(root, driver, ["--size", "2MiB", "--layers", "3", "--big-files", "1", "--big-size", "1MiB"])
    dropTarSplit(root)
    const { code, report } = checksumsJson(root)
    assert.equal(code, 0)
    for (const layer of layers) {
      const got = report.layers.find((l) => l.id === layer.id)
      assert.deepEqual([got?.status, got?.path, got?.fallbackKind], ["done", "fallback", "Unreadable"])
      const graphDir = path.join(root, "graph", layer.id)
      assert.equal((fs.statSync(path.join(graphDir, ".migration-tardata")).mode & 0o777).toString(8), (0o666 & ~process.umask()).toString(8))
      const again = await assembleLayer({
        tarDataPath: path.join(graphDir, ".migration-tardata"),
        root: new LayerRoot(path.join(root, layerDir(driver, layer.id))),
        engine,
      })
      assert.equal(`sha256:${again.sha256}`, fs.readFileSync(path.join(graphDir, ".migration-diffid"), "utf8"))
      assert.equal(String(again.size), fs.readFileSync(path.join(graphDir, ".migration-size"), "utf8"))
    }
  })
}

test("whiteouts of a full-copy child carry the time of the run, as Docker's time.Now()", () => {
  const root = path.join(tempDir("whiteout"), "docker")
  const { layers } = makeGraph(root, "vfs", ["--size", "1MiB", "--layers", "2"])
  dropTarSplit(root)
  const before = Math.floor(Date.now() / 1000)
  assert.equal(checksumsJson(root).code, 0)
  const after = Math.ceil(Date.now() / 1000)
  const lines = new TextDecoder().decode(gunzipSync(fs.readFileSync(path.join(root, "graph", layers[1]!.id, ".migration-tardata"))))
  const entries = lines.trim().split("\n").map((line) => decodeEntry(JSON.parse(line)))
  const index = entries.findIndex((e) => e.type === EntryType.File && e.name === "l0/d0/.wh.f3")
  assert.ok(index > 0, "no whiteout for the deleted l0/d0/f3")
  const header = entries[index - 1]!.payload!
  const block = header.subarray(header.length - 512)
  assert.equal(block[156], 0, "whiteouts have typeflag NUL")
  assert.equal(new TextDecoder().decode(block.subarray(100, 108)), "0000000\u0000", "whiteouts have mode 0")
  const mtime = parseInt(new TextDecoder().decode(block.subarray(136, 147)), 8)
  assert.ok(mtime >= before && mtime <= after, `whiteout mtime ${mtime} not within the run [${before}, ${after}]`)
})

test("a PAX header's name carries the process ID, as Go's writer did", () => {
  const root = path.join(tempDir("pax"), "docker")
  const { layers } = makeGraph(root, "aufs", ["--size", "1MiB", "--layers", "1"])
  fs.writeFileSync(path.join(root, "aufs/diff", layers[0]!.id, "café.txt"), "non-ASCII name")
  dropTarSplit(root)
  const { code, pid } = checksumsJson(root)
  assert.equal(code, 0)
  const lines = new TextDecoder().decode(gunzipSync(fs.readFileSync(path.join(root, "graph", layers[0]!.id, ".migration-tardata"))))
  const segments = lines.trim().split("\n").map((line) => decodeEntry(JSON.parse(line))).filter((e) => e.type === EntryType.Segment)
  const paxNames = segments.map((s) => new TextDecoder().decode(s.payload!)).filter((t) => t.includes("PaxHeaders."))
  assert.equal(paxNames.length, 1)
  assert.match(paxNames[0]!, new RegExp(`^PaxHeaders\\.${pid}/caf\\.txt\\u0000`))
  assert.match(paxNames[0]!, /path=café\.txt\n/)
})

test("a CRC mismatch found only after streaming a big file leaves no wrong helper file: the layer is regenerated", async () => {
  const root = path.join(tempDir("late-crc"), "docker")
  const { layers } = makeGraph(root, "aufs", ["--size", "1MiB", "--layers", "1", "--big-files", "1", "--big-size", "8MiB"])
  const id = layers[0]!.id
  const big = path.join(root, "aufs/diff", id, "l0/big0.bin")
  const fd = fs.openSync(big, "r+")
  fs.writeSync(fd, new Uint8Array([0x42]), 0, 1, 8 * 1024 * 1024 - 1) // the last byte: seen only at the end
  fs.closeSync(fd)
  const { code, report } = checksumsJson(root)
  assert.equal(code, 0)
  const got = report.layers[0]!
  assert.deepEqual([got.path, got.fallbackKind], ["fallback", "CrcMismatch"])
  assert.notEqual(got.diffId, layers[0]!.diffId)
  const graphDir = path.join(root, "graph", id)
  assert.notEqual(fs.statSync(path.join(graphDir, ".migration-tardata")).ino, fs.statSync(path.join(graphDir, "tar-data.json.gz")).ino)
  const again = await assembleLayer({
    tarDataPath: path.join(graphDir, ".migration-tardata"),
    root: new LayerRoot(path.join(root, "aufs/diff", id)),
    engine,
  })
  assert.equal(`sha256:${again.sha256}`, got.diffId)
})

test("fallback runs killed with SIGKILL at random moments, then re-run, end with the files of an uninterrupted run", async () => {
  const base = tempDir("kill-fallback")
  const reference = path.join(base, "reference")
  makeGraph(reference, "aufs", ["--size", "24MiB", "--layers", "8", "--big-files", "2", "--big-size", "8MiB"])
  dropTarSplit(reference)
  const victim = path.join(base, "victim")
  sh(`cp -a "$1" "$2"`, reference, victim) // keeps mtimes, which the regenerated tar records
  const before = snapshot(victim)
  assert.equal(checksumsJson(reference).code, 0)
  for (let attempt = 0; attempt < 5; attempt++) {
    const child = startCli(["checksums", "--graph", victim])
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(Math.random() * 300)))
    child.kill("SIGKILL")
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.on("exit", resolve)))
  }
  assert.equal(checksumsJson(victim).code, 0)
  const helpers = (root: string) =>
    new Map([...snapshot(root)].filter(([p]) => p.startsWith("graph/")).map(([p, v]) => [p, v.split(" ").filter((_, i) => i !== 2 && i !== 3).join(" ")]))
  const [got, want] = [helpers(victim), helpers(reference)]
  assert.deepEqual([...got].filter(([p, v]) => want.get(p) !== v), [])
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort())
  // Helper files, and the journal that lets rollback --checksums remove them.
  const outside = changedPaths(before, snapshot(victim))
    .filter((p) => !/^graph\/[0-9a-f]{64}\/\.migration-(diffid|size|tardata)$/.test(p) && p !== ".cas-migrator-journal")
  assert.deepEqual(outside, [])
})
