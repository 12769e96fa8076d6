/**
 * The tar that holds an export (a docker-archive, or an OCI layout as one
 * file): plain members written straight to a file descriptor through Go's
 * tar header rules, big members copied from files in 1 MiB pieces.
 *
 * @module
 */
import * as fs from "node:fs"
import { GoTarWriter, type TarHeader, TypeFlag } from "../GoTarWriter.ts"
import { writeAll } from "../platform/WriteAll.ts"

const utf8 = new TextEncoder()
const COPY = 1 << 20


export class ArchiveTar {
  private readonly writer: GoTarWriter

  constructor(private readonly fd: number) {
    const write = (bytes: Uint8Array) => writeAll(fd, bytes)
    this.writer = new GoTarWriter({ raw: write, beginEntry: () => {}, content: write }, 0)
  }

  private header(name: string, mode: number, typeflag: number, size: number): TarHeader {
    return {
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
    }
  }

  directory(name: string): void {
    this.writer.writeHeader(this.header(name.endsWith("/") ? name : `${name}/`, 0o40755, TypeFlag.Directory, 0))
  }

  file(name: string, content: Uint8Array | string): void {
    const bytes = typeof content === "string" ? utf8.encode(content) : content
    this.writer.writeHeader(this.header(name, 0o100644, TypeFlag.Regular, bytes.length))
    if (bytes.length > 0) this.writer.write(bytes)
  }

  /** A member whose content is the file `source` of `size` bytes. */
  fileFrom(name: string, source: string, size: number, mode = 0o100644): void {
    this.writer.writeHeader(this.header(name, mode, TypeFlag.Regular, size))
    const fd = fs.openSync(source, "r")
    try {
      const buffer = new Uint8Array(COPY)
      let left = size
      while (left > 0) {
        const n = fs.readSync(fd, buffer, 0, Math.min(COPY, left), null)
        if (n === 0) throw new Error(`${source} ended ${left} bytes short of ${size}`)
        this.writer.write(buffer.subarray(0, n))
        left -= n
      }
    } finally {
      fs.closeSync(fd)
    }
  }

  close(): void {
    this.writer.close()
  }
}
