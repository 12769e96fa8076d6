/**
 * The tar that holds an export (a docker-archive, or an OCI layout as one
 * file): members written at known offsets of a file through Go's tar header
 * rules. A member's content may also be written by someone else (a layer
 * worker) straight at its place, its header written once its size is known,
 * and members may be dropped again (an image that failed) by going back to an
 * earlier position.
 *
 * @module
 */
import * as fs from "node:fs"
import { GoTarWriter, type TarHeader, TypeFlag } from "../tar/GoTarWriter.ts"
import { writeAllAt } from "../platform/WriteAll.ts"

const utf8 = new TextEncoder()
const COPY = 1 << 20
const BLOCK = 512
const ZEROS = new Uint8Array(2 * BLOCK)

const header = (name: string, mode: number, typeflag: number, size: number): TarHeader => ({
  name: utf8.encode(name),
  mode,
  uid: 0,
  gid: 0,
  size,
  mtimeNs: 0n, // reproducible: the same graph gives the same archive
  typeflag,
  linkname: new Uint8Array(0),
  devmajor: 0,
  devminor: 0,
  xattrs: [],
})

/** The header block(s) of one member, as Go's writer writes them. */
const headerBytes = (name: string, mode: number, typeflag: number, size: number): Uint8Array => {
  const blocks: Array<Uint8Array> = []
  new GoTarWriter({ raw: (bytes) => void blocks.push(bytes.slice()), beginEntry: () => {}, content: () => {} }, 0)
    .writeHeader(header(name, mode, typeflag, size))
  const out = new Uint8Array(blocks.reduce((sum, b) => sum + b.length, 0))
  let at = 0
  for (const b of blocks) {
    out.set(b, at)
    at += b.length
  }
  return out
}

/** A member whose content is being written elsewhere: where its header goes, where its content starts. */
export interface PendingMember {
  readonly name: string
  readonly headerAt: number
  readonly contentAt: number
}

export class ArchiveTar {
  /** Where the next member starts. */
  private offset = 0

  constructor(private readonly fd: number) {}

  get position(): number {
    return this.offset
  }

  private put(bytes: Uint8Array): void {
    writeAllAt(this.fd, bytes, this.offset)
    this.offset += bytes.length
  }

  private pad(size: number): void {
    const padding = (BLOCK - (size % BLOCK)) % BLOCK
    if (padding > 0) this.put(ZEROS.subarray(0, padding))
  }

  directory(name: string): void {
    this.put(headerBytes(name.endsWith("/") ? name : `${name}/`, 0o40755, TypeFlag.Directory, 0))
  }

  file(name: string, content: Uint8Array | string): void {
    const bytes = typeof content === "string" ? utf8.encode(content) : content
    this.put(headerBytes(name, 0o100644, TypeFlag.Regular, bytes.length))
    this.put(bytes)
    this.pad(bytes.length)
  }

  /** A member whose content is the file `source` of `size` bytes. */
  fileFrom(name: string, source: string, size: number, mode = 0o100644): void {
    this.put(headerBytes(name, mode, TypeFlag.Regular, size))
    const fd = fs.openSync(source, "r")
    try {
      const buffer = new Uint8Array(COPY)
      let left = size
      while (left > 0) {
        const n = fs.readSync(fd, buffer, 0, Math.min(COPY, left), null)
        if (n === 0) throw new Error(`${source} ended ${left} bytes short of ${size}`)
        this.put(buffer.subarray(0, n))
        left -= n
      }
    } finally {
      fs.closeSync(fd)
    }
    this.pad(size)
  }

  /**
   * Starts a regular member whose content someone writes at `contentAt`;
   * nothing else may be written until `endMember` or `rewind`.
   */
  beginMember(name: string): PendingMember {
    // The header's length does not depend on the size (big sizes are base-256, in place).
    const length = headerBytes(name, 0o100644, TypeFlag.Regular, 0).length
    return { name, headerAt: this.offset, contentAt: this.offset + length }
  }

  /** Ends a member begun with `beginMember` whose `size` bytes are written: its header, its padding. */
  endMember(member: PendingMember, size: number): void {
    const bytes = headerBytes(member.name, 0o100644, TypeFlag.Regular, size)
    if (member.headerAt + bytes.length !== member.contentAt) throw new Error(`the header of ${member.name} changed length`)
    writeAllAt(this.fd, bytes, member.headerAt)
    this.offset = member.contentAt + size
    this.pad(size)
  }

  /** Drops every member from `position` on (an earlier `position`). */
  rewind(position: number): void {
    this.offset = position
  }

  /** The end-of-archive blocks; whatever lies beyond (dropped members) is cut off. */
  close(): void {
    this.put(ZEROS)
    fs.ftruncateSync(this.fd, this.offset)
  }
}
