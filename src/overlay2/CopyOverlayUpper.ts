/**
 * A legacy overlay container layer's `upper/` copied into an overlay2
 * `diff/`: it is already in overlay's own format (whiteouts as 0/0 character
 * devices, opaque directories by `trusted.overlay.opaque`), so every entry is
 * kept as it is: type, owner, mode, xattrs, mtime, device, hard links.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as libc from "../platform/LibcWrite.ts"
import { childPath, rawFiles } from "../platform/RawFiles.ts"

const COPY_BYTES = 1 << 20

/** Copies everything under `from` into the existing empty directory `to`. */
export const copyOverlayUpper = (from: Uint8Array, to: Uint8Array): void => {
  const linked = new Map<bigint, Uint8Array>() // inode -> first copy, for hard links
  const buffer = new Uint8Array(COPY_BYTES)
  const copyDirectory = (source: Uint8Array, target: Uint8Array) => {
    const names = rawFiles.readdir(source).sort((a, b) => Buffer.compare(a, b))
    for (const name of names) {
      const src = childPath(source, name)
      const dst = childPath(target, name)
      const stat = rawFiles.lstat(src)
      if (stat === undefined) continue
      if (stat.kind !== "directory" && stat.nlink > 1) {
        const first = linked.get(stat.ino)
        if (first !== undefined) {
          libc.link(first, dst)
          continue
        }
        linked.set(stat.ino, dst)
      }
      const type = stat.mode & 0o170000
      if (stat.kind === "directory") {
        libc.mkdir(dst, 0o700)
        copyDirectory(src, dst)
      } else if (stat.kind === "file") {
        const input = rawFiles.openNoFollow(src)
        const fd = libc.openForWrite(dst, 0o600)
        try {
          for (;;) {
            const n = input.read(buffer, 0, buffer.length)
            if (n === 0) break
            libc.writeFully(fd, buffer.subarray(0, n), dst)
          }
        } finally {
          input.close()
          libc.closeFile(fd, dst)
        }
      } else if (stat.kind === "symlink") {
        libc.symlink(rawFiles.readlink(src), dst)
      } else {
        libc.mknod(dst, type | (stat.mode & 0o7777), stat.rdev)
      }
      libc.lchown(dst, stat.uid, stat.gid)
      for (const [key, value] of libc.listXattrs(src)) libc.lsetxattr(dst, key, value)
      if (stat.kind !== "symlink") libc.chmod(dst, stat.mode & 0o7777)
      const mtimeNs = libc.modificationTimeNs(src)
      libc.setTimes(dst, mtimeNs, mtimeNs, stat.kind === "symlink")
    }
  }
  copyDirectory(from, to)
}
