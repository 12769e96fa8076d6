/**
 * Two directory trees compared entry by entry, as a layer's files and what a
 * client unpacked from an exported image: path, type, mode, owner, size and
 * content, symlink target, device numbers, and mtimes where asked.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { Buffer } from "node:buffer"
import { compareBytes } from "../../src/Bytes.ts"
import { rawFiles } from "../../src/platform/RawFiles.ts"

export interface TreeEntry {
  readonly kind: string
  /** st_mode: type bits and permissions. */
  readonly mode: number
  readonly owner: string
  /** SHA-256 of a file, target of a symlink, device numbers of a device. */
  readonly content: string
  readonly size: number
  /** Whole seconds (tar keeps no more). */
  readonly mtime: bigint
  /** The other paths of a file's hard-link group (same inode), comma-separated; "" for none. */
  links: string
  readonly ino: bigint
}

const S_IFMT = 0o170000
const S_IFSOCK = 0o140000

/** Every entry under `root` (names as bytes, keyed latin1, relative, without the root itself). Sockets are left out: no tar holds them. */
export const describeTree = (root: string): Map<string, TreeEntry> => {
  const out = new Map<string, TreeEntry>()
  const walk = (dir: Uint8Array, relative: string) => {
    for (const name of rawFiles.readdir(dir).sort(compareBytes)) {
      const full = new Uint8Array(Buffer.concat([dir, Buffer.from("/"), name]))
      const key = relative + Buffer.from(name).toString("latin1")
      const stat = rawFiles.lstat(full)
      if (stat === undefined || (stat.mode & S_IFMT) === S_IFSOCK) continue
      let content = ""
      if (stat.kind === "file") {
        const hash = createHash("sha256")
        const handle = rawFiles.openNoFollow(full)
        const buffer = new Uint8Array(1 << 16)
        for (let n = handle.read(buffer, 0, buffer.length); n > 0; n = handle.read(buffer, 0, buffer.length)) hash.update(buffer.subarray(0, n))
        handle.close()
        content = hash.digest("hex")
      } else if (stat.kind === "symlink") content = Buffer.from(rawFiles.readlink(full)).toString("latin1")
      else if (stat.kind === "other") content = `rdev ${stat.rdev}`
      out.set(key, {
        kind: stat.kind,
        mode: stat.mode,
        owner: `${stat.uid}:${stat.gid}`,
        content,
        size: stat.kind === "file" ? stat.size : 0,
        mtime: stat.mtimeNs / 1_000_000_000n,
        links: "",
        ino: stat.kind === "file" && stat.nlink > 1 ? stat.ino : -1n,
      })
      if (stat.kind === "directory") walk(full, key + "/")
    }
  }
  walk(new TextEncoder().encode(root), "")
  const groups = new Map<bigint, Array<string>>()
  for (const [key, entry] of out) if (entry.ino >= 0n) groups.set(entry.ino, [...(groups.get(entry.ino) ?? []), key])
  for (const [key, entry] of out) if (entry.ino >= 0n) entry.links = groups.get(entry.ino)!.filter((other) => other !== key).join(",")
  return out
}

/**
 * Every difference between the trees `want` (a layer's files, as Docker's
 * extraction left them) and `have` (a client's unpack of the same tar
 * bytes): missing and extra paths, then each differing field. `mtimes` says
 * which kinds' mtimes count. Two things Docker's extraction did its own way
 * are not differences:
 *
 * - the mode of a hard-linked file: Docker chmod'ed the shared inode to each
 *   link header's mode in turn (the last wins), other clients keep the first
 *   header's; the hard-link groups themselves must be the same;
 * - an mtime before 1970: Docker's `system.Chtimes` set the epoch instead.
 */
export const treeDifferences = (
  want: ReadonlyMap<string, TreeEntry>,
  have: ReadonlyMap<string, TreeEntry>,
  mtimes: ReadonlyArray<string>,
): Array<string> => {
  const problems: Array<string> = []
  for (const [key, a] of want) {
    const b = have.get(key)
    if (b === undefined) {
      problems.push(`${key}: missing`)
      continue
    }
    if (a.kind !== b.kind) problems.push(`${key}: a ${b.kind}, want a ${a.kind}`)
    if (a.links !== b.links) problems.push(`${key}: hard links [${b.links}], want [${a.links}]`)
    const sameLinkGroup = a.links !== "" && a.links === b.links && a.kind === "file" && b.kind === "file"
    if (a.mode !== b.mode && !sameLinkGroup) problems.push(`${key}: mode ${b.mode.toString(8)}, want ${a.mode.toString(8)}`)
    if (a.owner !== b.owner) problems.push(`${key}: owner ${b.owner}, want ${a.owner}`)
    if (a.size !== b.size) problems.push(`${key}: size ${b.size}, want ${a.size}`)
    if (a.content !== b.content) problems.push(`${key}: content ${b.content}, want ${a.content}`)
    if (mtimes.includes(a.kind) && a.mtime !== b.mtime && !(a.mtime === 0n && b.mtime < 0n)) problems.push(`${key}: mtime ${b.mtime}, want ${a.mtime}`)
  }
  for (const key of have.keys()) if (!want.has(key)) problems.push(`${key}: extra`)
  return problems
}
