/**
 * One test per header rule of Go 1.5's archive/tar writer, as Docker 1.10
 * regenerated layers with it.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import { concatBytes } from "../src/Bytes.ts"
import { GoTarWriter, goModTime, type TarHeader, type TarSink, TypeFlag } from "../src/tar/GoTarWriter.ts"

const utf8 = new TextEncoder()
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** Collects the stream and the entry names a tar reader would give. */
const capture = () => {
  const chunks: Array<Uint8Array> = []
  const names: Array<string> = []
  const sink: TarSink = {
    raw: (bytes) => void chunks.push(bytes.slice()),
    beginEntry: (name) => void names.push(text(name)),
    content: (bytes) => void chunks.push(bytes.slice()),
  }
  const bytes = () => concatBytes(chunks)
  return { sink, names, bytes }
}

const header = (overrides: Partial<TarHeader> = {}): TarHeader => ({
  name: utf8.encode("etc/file"),
  mode: 0o100644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeNs: 1449050000_000000000n,
  typeflag: TypeFlag.Regular,
  linkname: new Uint8Array(0),
  devmajor: 0,
  devminor: 0,
  xattrs: [],
  ...overrides,
})

const headersOf = (...headers: Array<TarHeader>) => {
  const { sink, names, bytes } = capture()
  const tar = new GoTarWriter(sink, 4242)
  for (const h of headers) {
    tar.writeHeader(h)
    if (h.size > 0) tar.write(new Uint8Array(h.size).fill(0x61))
  }
  tar.close()
  return { stream: bytes(), names }
}

const field = (block: Uint8Array, offset: number, size: number) => text(block.subarray(offset, offset + size))
const block = (stream: Uint8Array, index: number) => stream.subarray(index * 512, index * 512 + 512)

/** A header field without the NUL padding at its end. */
const unpadded = (value: string) => {
  let end = value.length
  while (end > 0 && value.charCodeAt(end - 1) === 0) end--
  return value.slice(0, end)
}

test("headers are ustar with version 00 by default", () => {
  const { stream } = headersOf(header())
  assert.equal(field(block(stream, 0), 257, 8), "ustar\u000000")
})

test("a uid over 2097151 is written base-256 and every later header carries the GNU magic", () => {
  const { stream } = headersOf(header({ uid: 2097151 }), header({ uid: 3000000 }), header({ name: utf8.encode("later") }))
  assert.equal(field(block(stream, 0), 108, 8), "7777777\u0000")
  assert.equal(field(block(stream, 0), 257, 8), "ustar\u000000")
  const binary = block(stream, 1).subarray(108, 116)
  assert.deepEqual([...binary], [0x80, 0, 0, 0, 0, 0x2d, 0xc6, 0xc0])
  assert.equal(field(block(stream, 1), 257, 8), "ustar  \u0000")
  assert.equal(field(block(stream, 2), 257, 8), "ustar  \u0000")
})

test("the mode field keeps the file-type bits", () => {
  const { stream } = headersOf(header({ mode: 0o104755 }))
  assert.equal(field(block(stream, 0), 100, 8), "0104755\u0000")
})

test("uname and gname are empty", () => {
  const { stream } = headersOf(header())
  assert.equal(field(block(stream, 0), 265, 64), "\u0000".repeat(64))
})

test("mtimes are whole seconds, and 0 before 1970 or after 2242", () => {
  assert.equal(goModTime(1449050000_999999999n), 1449050000)
  assert.equal(goModTime(-1n), 0)
  assert.equal(goModTime((2n ** 33n) * 1_000_000_000n), 0)
  const { stream } = headersOf(header({ mtimeNs: -5_000_000_000n }))
  assert.equal(field(block(stream, 0), 136, 12), "00000000000\u0000")
})

test("the checksum is six octal digits, NUL and space", () => {
  const { stream } = headersOf(header())
  const b = block(stream, 0)
  assert.match(field(b, 148, 6), /^[0-7]{6}$/)
  assert.equal(field(b, 154, 2), "\u0000 ")
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!
  assert.equal(parseInt(field(b, 148, 6), 8), sum)
})

test("a long ASCII name is split into ustar prefix + name, and the reader sees prefix/name", () => {
  const name = `${"p".repeat(60)}/${"q".repeat(60)}/file.txt`
  const { stream, names } = headersOf(header({ name: utf8.encode(name) }))
  assert.equal(field(block(stream, 0), 0, 9), "file.txt\u0000")
  assert.equal(unpadded(field(block(stream, 0), 345, 122)), `${"p".repeat(60)}/${"q".repeat(60)}`)
  assert.deepEqual(names, [name])
})

test("after base-256 the split name still carries the GNU magic", () => {
  const name = `${"p".repeat(60)}/${"q".repeat(60)}/after.txt`
  const { stream } = headersOf(header({ uid: 3000000 }), header({ name: utf8.encode(name) }))
  assert.equal(field(block(stream, 1), 257, 8), "ustar  \u0000")
  assert.equal(field(block(stream, 1), 345, 10), "pppppppppp")
})

test("a name that cannot be split gets a PAX header named <dir>/PaxHeaders.<pid>/<base>", () => {
  const name = `dir/${"x".repeat(120)}`
  const { stream, names } = headersOf(header({ name: utf8.encode(name) }))
  const pax = block(stream, 0)
  assert.equal(pax[156], TypeFlag.PaxHeader)
  assert.equal(field(pax, 0, 100), `dir/PaxHeaders.4242/${"x".repeat(80)}`) // cut at 100 bytes
  const record = `${4 + 1 + 1 + name.length + 1 + 3} path=${name}\n`
  assert.equal(field(stream, 512, record.length), record)
  assert.equal(field(block(stream, 2), 0, 1), "\u0000") // the name field stays empty
  assert.deepEqual(names, [name])
})

test("a non-ASCII name gets a PAX path record and an ASCII-only PAX header name", () => {
  const name = utf8.encode("usr/café-日本.txt")
  const { stream, names } = headersOf(header({ name }))
  assert.equal(unpadded(field(block(stream, 0), 0, 32)), "usr/PaxHeaders.4242/caf-.txt")
  assert.deepEqual(names, ["usr/café-日本.txt"])
})

test("a link target over 100 bytes gets a PAX linkpath record", () => {
  const target = "t".repeat(101)
  const { stream } = headersOf(header({ typeflag: TypeFlag.Symlink, mode: 0o120777, linkname: utf8.encode(target) }))
  assert.equal(block(stream, 0)[156], TypeFlag.PaxHeader)
  assert.match(field(stream, 512, 200), new RegExp(`^\\d+ linkpath=${target}\n`))
})

test("security.capability becomes a SCHILY.xattr PAX record", () => {
  const value = new Uint8Array([1, 0, 0, 2])
  const { stream } = headersOf(header({ xattrs: [["security.capability", value]] }))
  assert.equal(block(stream, 0)[156], TypeFlag.PaxHeader)
  assert.equal(field(stream, 512, 41), "41 SCHILY.xattr.security.capability=\u0001\u0000\u0000\u0002\n")
})

test("a PAX record's length counts its own digits", () => {
  // 93 bytes of "path=..." + 2 would be 95 plus 2 digits = 97; one byte more crosses to 3 digits.
  for (const length of [90, 91, 92, 93, 94, 95, 96, 97, 98]) {
    const name = `d/${"n".repeat(length)}`.padEnd(101, "n")
    const { stream } = headersOf(header({ name: utf8.encode(`${name}/${"z".repeat(101)}`) }))
    const recordText = field(stream, 512, 512)
    const declared = Number(recordText.split(" ")[0])
    assert.equal(recordText.indexOf("\n") + 1, declared)
  }
})

test("content is padded to 512 bytes; the stream ends with two zero blocks and no record padding", () => {
  const { stream } = headersOf(header({ size: 3 }))
  assert.equal(stream.length, 512 + 512 + 1024)
  assert.ok(stream.subarray(1024).every((b) => b === 0))
  assert.ok(stream.subarray(515, 1024).every((b) => b === 0))
})

test("a directory name ends in / as Docker passes it, and sizes of non-files are 0", () => {
  const { stream } = headersOf(header({ name: utf8.encode("etc/"), typeflag: TypeFlag.Directory, mode: 0o40755 }))
  assert.equal(field(block(stream, 0), 0, 5), "etc/\u0000")
  assert.equal(field(block(stream, 0), 124, 12), "00000000000\u0000")
})

test("device numbers are octal, and base-256 when too big (GNU magic follows)", () => {
  const { stream } = headersOf(header({ typeflag: TypeFlag.Block, mode: 0o60600, devmajor: 259, devminor: 70000 }))
  assert.equal(field(block(stream, 0), 329, 8), "0000403\u0000")
  assert.equal(field(block(stream, 0), 337, 8), "0210560\u0000")
})
