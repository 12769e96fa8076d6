/**
 * The overlay2 target's tar push parser takes bytes in any pieces: GNU tar's
 * archives (gnu and pax formats: long names and link targets, xattrs,
 * hard links, symlinks, FIFOs, empty and block-sized files) give the same
 * entries and data however they are cut, down to one byte at a time.
 */
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { type TarHeader, TarStreamReader } from "../src/overlay2/TarStreamReader.ts"
import { tempDir } from "./support/cli.ts"

/** What the reader handed over: each entry's header fields and its data, as one string. */
const parse = (stream: Uint8Array, cut: (length: number, at: number) => number): Array<string> => {
  const out: Array<string> = []
  let header: TarHeader | undefined
  let data: Array<Uint8Array> = []
  let ended = 0
  const reader = new TarStreamReader({
    entry: (h) => {
      header = h
      data = []
    },
    data: (bytes) => data.push(bytes.slice()),
    end: () => {
      ended++
      const h = header!
      out.push(JSON.stringify({
        name: Buffer.from(h.name).toString("latin1"),
        linkname: Buffer.from(h.linkname).toString("latin1"),
        typeflag: h.typeflag,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: h.size,
        mtime: String(h.mtimeNs),
        xattrs: h.xattrs.map(([k, v]) => [Buffer.from(k).toString("latin1"), Buffer.from(v).toString("hex")]),
        data: Buffer.concat(data).toString("hex"),
      }))
    },
  })
  for (let at = 0; at < stream.length;) {
    const n = Math.max(1, Math.min(cut(stream.length, at), stream.length - at))
    reader.push(stream.subarray(at, at + n))
    at += n
  }
  assert.ok(reader.done, "the end-of-archive blocks were read")
  assert.equal(ended, out.length)
  return out
}

/** A seeded xorshift: the same cuts every run. */
const random = (seed: number) => () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 2 ** 32
}

const makeTree = (dir: string) => {
  const long = "d".repeat(120)
  fs.mkdirSync(path.join(dir, long, "sub"), { recursive: true })
  const sizes = [0, 1, 511, 512, 513, 1024, 10_000, 70_001]
  sizes.forEach((size, i) => {
    const bytes = Buffer.alloc(size)
    for (let j = 0; j < size; j++) bytes[j] = (j * 31 + i) & 0xff
    fs.writeFileSync(path.join(dir, long, "sub", `${"f".repeat(90 + i)}-${size}`), bytes)
  })
  fs.writeFileSync(path.join(dir, "café-日本.txt"), "unicode\n")
  fs.linkSync(path.join(dir, "café-日本.txt"), path.join(dir, "hard"))
  fs.symlinkSync(`${long}/sub/${"t".repeat(150)}`, path.join(dir, "long-link"))
  spawnSync("mkfifo", [path.join(dir, "fifo")])
  const xattr = spawnSync("python3", ["-c", "import os, sys; os.setxattr(sys.argv[1], 'user.note', bytes([0, 255, 16]))", path.join(dir, "hard")])
  assert.equal(xattr.status, 0, `setting an xattr (python3, npm test installs it): ${xattr.stderr}`)
  fs.utimesSync(path.join(dir, "hard"), 1450000000.5, 1450000000.5)
}

for (const format of ["gnu", "pax"] as const) {
  test(`GNU tar's ${format} archive parses to the same entries however it is cut, one byte at a time included`, () => {
    const base = tempDir("tar-stream-reader")
    const tree = path.join(base, "tree")
    fs.mkdirSync(tree)
    makeTree(tree)
    const archive = path.join(base, `${format}.tar`)
    const made = spawnSync("tar", [`--format=${format}`, "--xattrs", "--xattrs-include=user.*", "-C", tree, "-cf", archive, "."], { encoding: "utf8" })
    assert.equal(made.status, 0, made.stderr)
    const stream = new Uint8Array(fs.readFileSync(archive))
    const whole = parse(stream, (length) => length)
    assert.ok(whole.length >= 14, `only ${whole.length} entries`)
    assert.ok(whole.some((e) => e.includes(`"name":"./${"d".repeat(120)}/sub/${"f".repeat(97)}-70001"`)), "the long name")
    assert.ok(whole.some((e) => e.includes(`"linkname":"${"d".repeat(120)}/sub/${"t".repeat(150)}"`)), "the long link target")
    if (format === "pax") assert.ok(whole.some((e) => e.includes(`["user.note","00ff10"]`)), "the xattr")
    assert.deepEqual(parse(stream, () => 1), whole, "one byte at a time")
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const next = random(seed)
      // Cuts of every scale: inside a header, across a header and its data, across many blocks.
      const scale = [7, 600, 5000][seed % 3]!
      assert.deepEqual(parse(stream, () => 1 + Math.floor(next() * scale)), whole, `seed ${seed}`)
    }
  })
}
