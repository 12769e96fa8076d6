import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { LayerPathError, LayerRoot } from "../src/tar/LayerPath.ts"
import { tempDir } from "./support/cli.ts"

const utf8 = new TextEncoder()

/** A layer root with files, directories and symlinks, next to a file that must never be read. */
const makeLayer = () => {
  const base = tempDir("layer-path")
  const root = path.join(base, "layer")
  fs.mkdirSync(path.join(root, "usr/lib"), { recursive: true })
  fs.writeFileSync(path.join(root, "usr/lib/libc.so"), "libc")
  fs.writeFileSync(path.join(base, "secret"), "outside")
  fs.symlinkSync("usr/lib", path.join(root, "lib"))
  fs.symlinkSync("../../usr", path.join(root, "usr/lib/up"))
  fs.symlinkSync("/etc", path.join(root, "etc"))
  fs.symlinkSync("../secret", path.join(root, "escape"))
  fs.symlinkSync("libc.so", path.join(root, "usr/lib/libc.so.6"))
  spawnSync("mkfifo", [path.join(root, "fifo")])
  return { base, root }
}

const read = (root: string, name: string | Uint8Array): string => {
  const handle = new LayerRoot(root).open(typeof name === "string" ? utf8.encode(name) : name)
  const buffer = new Uint8Array(64)
  const n = handle.read(buffer, 0, buffer.length)
  handle.close()
  return new TextDecoder().decode(buffer.subarray(0, n))
}

const problem = (root: string, name: string): string => {
  try {
    new LayerRoot(root).open(utf8.encode(name))
  } catch (error) {
    if (error instanceof LayerPathError) return error.problem
    throw error
  }
  return "opened"
}

test("a plain name opens the file under the root", () => {
  const { root } = makeLayer()
  assert.equal(read(root, "usr/lib/libc.so"), "libc")
})

test("names are cleaned as Go's filepath.Join cleans them: a/../b and absolute names stay inside", () => {
  const { root } = makeLayer()
  assert.equal(read(root, "usr/x/../lib/./libc.so"), "libc")
  assert.equal(read(root, "/usr/lib/libc.so"), "libc")
})

test("a name that climbs above the root with .. is refused", () => {
  const { root } = makeLayer()
  assert.equal(problem(root, "../secret"), "Escapes")
  assert.equal(problem(root, "usr/../../secret"), "Escapes")
})

test("symlinks that stay inside the layer are followed, in directories and at the end", () => {
  const { root } = makeLayer()
  assert.equal(read(root, "lib/libc.so"), "libc")
  assert.equal(read(root, "usr/lib/libc.so.6"), "libc")
  assert.equal(read(root, "usr/lib/up/lib/libc.so"), "libc")
})

test("an absolute symlink or one that climbs out is refused, never followed", () => {
  const { root } = makeLayer()
  assert.equal(problem(root, "etc/passwd"), "Escapes")
  assert.equal(problem(root, "escape"), "Escapes")
})

test("missing files and directories are Missing; directories and FIFOs are not regular files", () => {
  const { root } = makeLayer()
  assert.equal(problem(root, "usr/lib/nope"), "Missing")
  assert.equal(problem(root, "nope/libc.so"), "Missing")
  assert.equal(problem(root, "usr/lib/libc.so/x"), "Missing")
  assert.equal(problem(root, "usr"), "NotRegular")
  assert.ok(fs.existsSync(path.join(root, "fifo")), "mkfifo failed")
  assert.equal(problem(root, "fifo"), "NotRegular") // opened without blocking, then refused
})

test("a name that is not UTF-8 opens the file with exactly those bytes", () => {
  const { root } = makeLayer()
  const name = new Uint8Array([...utf8.encode("usr/lib/raw-"), 0xff, 0xfe])
  const full = Buffer.concat([Buffer.from(root + "/"), Buffer.from(name)])
  // Made by python3: Deno's own fs cannot create a name that is not UTF-8.
  const made = spawnSync("python3", ["-c", "import sys; open(bytes.fromhex(sys.argv[1]), 'wb').write(b'raw bytes')", full.toString("hex")])
  assert.equal(made.status, 0, String(made.stderr))
  assert.equal(read(root, name), "raw bytes")
})
