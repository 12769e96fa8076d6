/**
 * Regenerating a layer's tar as Docker 1.10's `pkg/archive` did, into a
 * `GoTarWriter`:
 *
 * - `writeTree`: a whole directory (a base layer, or an aufs diff) as
 *   `archive.TarWithOptions` walked it: `filepath.Walk` order (depth first,
 *   names sorted bytewise in each directory), aufs metadata (`.wh..wh.*` at
 *   the top, except the opaque marker) left out when asked;
 * - `writeChanges`: a child of a full-copy driver as `ChangesDirs(child,
 *   parent)` + `ExportChanges`: what was added, modified (Docker's
 *   `statDifferent`, or a different `security.capability`) or deleted,
 *   sorted by full path, deletions as `.wh.<name>` entries stamped now;
 *
 * each entry with `addTarFile`'s header: Go 1.5's `FileInfoHeader` (file-type
 * bits in the mode), hard links to the first path seen, device numbers with
 * Docker's major/minor split, `security.capability` as the only xattr.
 *
 * @module
 */
import { compareBytes, concatBytes, latin1 } from "../Bytes.ts"
import { GoTarWriter, type TarHeader, TypeFlag } from "./GoTarWriter.ts"
import { type FileStat, rawFiles } from "../platform/RawFiles.ts"
import { lgetxattr } from "../platform/Xattr.ts"

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFBLK = 0o060000
const S_IFCHR = 0o020000
const utf8 = new TextEncoder()
const SLASH = utf8.encode("/")
const COPY_CHUNK = 1 << 20

const join = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => concatBytes(parts)
const child = (dir: Uint8Array, name: Uint8Array): Uint8Array => (dir.length === 0 ? name : join(dir, SLASH, name))
const key = latin1

/** What the archive needs from the files: byte paths, `lstat`, reading. */
export interface ArchiveSource {
  /** The directory whose contents are archived (absolute, bytes). */
  readonly root: Uint8Array
}

/** Shared state of one tar stream (`tarAppender`): the first name seen for each inode. */
class Appender {
  private readonly seenInodes = new Map<bigint, Uint8Array>()
  private readonly buffer = new Uint8Array(COPY_CHUNK)

  constructor(readonly tar: GoTarWriter) {}

  /** Docker's `addTarFile(path, name)`; a file gone since it was listed is skipped (Docker logged it). */
  add(path: Uint8Array, name: Uint8Array): void {
    const stat = rawFiles.lstat(path)
    if (stat === undefined) return
    const header = headerFor(stat, name, stat.kind === "symlink" ? rawFiles.readlink(path) : new Uint8Array(0))
    let { typeflag, linkname, size } = header
    if (stat.kind !== "directory" && stat.nlink > 1) {
      const first = this.seenInodes.get(stat.ino)
      if (first !== undefined) {
        typeflag = TypeFlag.Link
        linkname = first
        size = 0
      } else {
        this.seenInodes.set(stat.ino, header.name)
      }
    }
    const capability = lgetxattr(path, "security.capability")
    this.tar.writeHeader({
      ...header,
      typeflag,
      linkname,
      size,
      xattrs: capability === undefined ? [] : [["security.capability", capability]],
    })
    if (typeflag === TypeFlag.Regular) this.copy(path, size)
  }

  private copy(path: Uint8Array, size: number): void {
    const handle = rawFiles.openNoFollow(path)
    try {
      for (let left = size; left > 0;) {
        const n = handle.read(this.buffer, 0, Math.min(left, COPY_CHUNK))
        if (n === 0) throw new Error(`archive/tar: missed writing ${left} bytes (the file shrank)`)
        this.tar.write(this.buffer.subarray(0, n))
        left -= n
      }
    } finally {
      handle.close()
    }
  }
}

/** Go 1.5 `FileInfoHeader` + Docker's name and device handling, before hard links and xattrs. */
export const headerFor = (stat: FileStat, name: Uint8Array, link: Uint8Array): Omit<TarHeader, "xattrs"> => {
  let mode = stat.mode & 0o777
  let typeflag: number = TypeFlag.None
  let size = 0
  let tarName = name
  let linkname: Uint8Array = new Uint8Array(0)
  switch (stat.mode & S_IFMT) {
    case 0o100000:
      mode |= 0o100000
      typeflag = TypeFlag.Regular
      size = stat.size
      break
    case S_IFDIR:
      mode |= S_IFDIR
      typeflag = TypeFlag.Directory
      if (name[name.length - 1] !== 0x2f) tarName = join(name, SLASH)
      break
    case 0o120000:
      mode |= 0o120000
      typeflag = TypeFlag.Symlink
      linkname = link
      break
    case S_IFCHR:
      mode |= S_IFCHR
      typeflag = TypeFlag.Char
      break
    case S_IFBLK:
      mode |= S_IFBLK
      typeflag = TypeFlag.Block
      break
    case 0o010000:
      mode |= 0o010000
      typeflag = TypeFlag.Fifo
      break
    case 0o140000:
      mode |= 0o140000 // a socket keeps typeflag NUL, as Go 1.5 left it
      break
  }
  mode |= stat.mode & 0o7000 // setuid, setgid, sticky
  // Docker tests the type with bit masks (so directories and symlinks pass too; their rdev is 0).
  const device = (stat.mode & S_IFBLK) !== 0 || (stat.mode & S_IFCHR) !== 0
  return {
    name: tarName,
    mode,
    uid: stat.uid,
    gid: stat.gid,
    size,
    mtimeNs: stat.mtimeNs,
    typeflag,
    linkname,
    devmajor: device ? Number((stat.rdev >> 8n) & 0xfffn) : 0,
    devminor: device ? Number((stat.rdev & 0xffn) | ((stat.rdev >> 12n) & 0xfff00n)) : 0,
  }
}

const AUFS_METADATA = utf8.encode(".wh..wh.")
const AUFS_OPAQUE = utf8.encode(".wh..wh..opq")
const startsWith = (bytes: Uint8Array, prefix: Uint8Array) =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b)

/** Archives everything under `root` in `filepath.Walk` order. */
export const writeTree = (tar: GoTarWriter, root: Uint8Array, options: { readonly hideAufsMetadata: boolean }) => {
  const appender = new Appender(tar)
  const visit = (dir: Uint8Array, relative: Uint8Array) => {
    let names: Array<Uint8Array>
    try {
      names = rawFiles.readdir(dir)
    } catch {
      return // Docker's walk logged an unreadable directory and went on
    }
    names.sort(compareBytes)
    for (const name of names) {
      if (
        options.hideAufsMetadata && relative.length === 0 && startsWith(name, AUFS_METADATA) &&
        compareBytes(name, AUFS_OPAQUE) !== 0
      ) {
        continue
      }
      const path = join(dir, SLASH, name)
      const relativeName = child(relative, name)
      appender.add(path, relativeName)
      if (rawFiles.lstat(path)?.kind === "directory") visit(path, relativeName)
    }
  }
  visit(root, new Uint8Array(0))
  tar.close()
}

/** One node of Docker's `FileInfo` tree. */
interface Node {
  readonly path: Uint8Array // "/a/b"
  readonly stat: FileStat | undefined // undefined for the root
  readonly capability: Uint8Array | undefined
  readonly children: Map<string, Node>
  added: boolean
}

const isDirNode = (node: Node) => node.stat === undefined || (node.stat.mode & S_IFDIR) !== 0
const newNode = (path: Uint8Array, stat: FileStat | undefined, capability: Uint8Array | undefined): Node => ({
  path,
  stat,
  capability,
  children: new Map(),
  added: false,
})

/** Docker's `collectFileInfoForChanges`: both trees, leaving out entries that are the same inode on both sides. */
const collect = (oldRoot: Uint8Array, newRoot: Uint8Array): [Node, Node] => {
  const trees: [Node, Node] = [newNode(SLASH, undefined, undefined), newNode(SLASH, undefined, undefined)]
  const roots = [oldRoot, newRoot]
  const walk = (path: Uint8Array, nodes: [Node | undefined, Node | undefined], stats: [FileStat | undefined, FileStat | undefined]) => {
    const isDir = stats.map((stat) => stat?.kind === "directory")
    if (!isDir[0] && !isDir[1]) return
    const sameDevice = stats[0] !== undefined && stats[1] !== undefined && stats[0].dev === stats[1].dev
    const listings = [0, 1].map((side) =>
      isDir[side] ? rawFiles.readdir(join(roots[side]!, path)).sort(compareBytes) : []
    )
    const names: Array<Uint8Array> = []
    let i = 0
    let j = 0
    const inode = (side: number, name: Uint8Array) => rawFiles.lstat(join(roots[side]!, child(path, name)))?.ino
    while (i < listings[0]!.length && j < listings[1]!.length) {
      const a = listings[0]![i]!
      const b = listings[1]![j]!
      const order = compareBytes(a, b)
      if (order < 0) {
        names.push(a)
        i++
      } else if (order > 0) {
        names.push(b)
        j++
      } else {
        if (!sameDevice || inode(0, a) !== inode(1, b)) names.push(a)
        i++
        j++
      }
    }
    names.push(...listings[0]!.slice(i), ...listings[1]!.slice(j))
    for (const name of names) {
      const childPath = path.length === 1 ? join(SLASH, name) : join(path, SLASH, name)
      const childNodes: [Node | undefined, Node | undefined] = [undefined, undefined]
      const childStats: [FileStat | undefined, FileStat | undefined] = [undefined, undefined]
      for (const side of [0, 1] as const) {
        if (!isDir[side]) continue
        const full = join(roots[side]!, childPath)
        const stat = rawFiles.lstat(full)
        if (stat === undefined || nodes[side] === undefined) continue
        const node = newNode(childPath, stat, lgetxattr(full, "security.capability"))
        nodes[side]!.children.set(key(name), node)
        childNodes[side] = node
        childStats[side] = stat
      }
      walk(childPath, childNodes, childStats)
    }
  }
  const rootStats: [FileStat | undefined, FileStat | undefined] = [rawFiles.lstat(oldRoot), rawFiles.lstat(newRoot)]
  if (rootStats[0] === undefined || rootStats[1] === undefined) throw new Error("Cannot diff layers: a root is missing")
  walk(SLASH, trees, rootStats)
  return trees
}

/** Docker's `sameFsTimeSpec`: equal seconds, and equal nanoseconds unless either is 0. */
const sameTime = (a: bigint, b: bigint) => {
  const second = 1_000_000_000n
  const floor = (x: bigint) => (x >= 0n ? x / second : -((-x + second - 1n) / second))
  const [sa, sb] = [floor(a), floor(b)]
  const [na, nb] = [a - sa * second, b - sb * second]
  return sa === sb && (na === nb || na === 0n || nb === 0n)
}

/** Docker's `statDifferent` (its directory test is a bit mask, so block devices and sockets pass as directories). */
const statDifferent = (old: FileStat, now: FileStat): boolean =>
  old.mode !== now.mode || old.uid !== now.uid || old.gid !== now.gid || old.rdev !== now.rdev ||
  ((old.mode & S_IFDIR) !== S_IFDIR && (!sameTime(old.mtimeNs, now.mtimeNs) || old.size !== now.size))

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  compareBytes(a ?? new Uint8Array(0), b ?? new Uint8Array(0)) === 0

type Change = { readonly path: Uint8Array; readonly kind: "add" | "modify" | "delete" }

/** Docker's `FileInfo.addChanges`. */
const addChanges = (info: Node, old: Node | undefined, changes: Array<Change>) => {
  const sizeAtEntry = changes.length
  if (old === undefined) {
    changes.push({ path: info.path, kind: "add" })
    info.added = true
  }
  const oldChildren = new Map(old !== undefined && isDirNode(info) ? old.children : [])
  for (const [name, newChild] of info.children) {
    const oldChild = oldChildren.get(name)
    if (oldChild !== undefined) {
      if (statDifferent(oldChild.stat!, newChild.stat!) || !sameBytes(oldChild.capability, newChild.capability)) {
        changes.push({ path: newChild.path, kind: "modify" })
        newChild.added = true
      }
      oldChildren.delete(name)
    }
    addChanges(newChild, oldChild, changes)
  }
  for (const oldChild of oldChildren.values()) changes.push({ path: oldChild.path, kind: "delete" })
  if (changes.length > sizeAtEntry && isDirNode(info) && !info.added && info.stat !== undefined) {
    changes.splice(sizeAtEntry, 0, { path: info.path, kind: "modify" })
  }
}

/** The changes from `oldRoot` (the parent's files) to `newRoot`, sorted by path as `ExportChanges` sorts them. */
export const changesBetween = (oldRoot: Uint8Array, newRoot: Uint8Array): Array<Change> => {
  const [oldTree, newTree] = collect(oldRoot, newRoot)
  const changes: Array<Change> = []
  addChanges(newTree, oldTree, changes)
  return changes.sort((a, b) => compareBytes(a.path, b.path))
}

/** Docker's `ExportChanges`: a child layer of a full-copy driver. `now` stamps the whiteouts. */
export const writeChanges = (tar: GoTarWriter, oldRoot: Uint8Array, newRoot: Uint8Array, now: () => bigint) => {
  const appender = new Appender(tar)
  for (const change of changesBetween(oldRoot, newRoot)) {
    const relative = change.path.subarray(1)
    if (change.kind === "delete") {
      const slash = relative.lastIndexOf(0x2f)
      const whiteout = join(relative.subarray(0, slash + 1), utf8.encode(".wh."), relative.subarray(slash + 1))
      tar.writeHeader({
        name: whiteout,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        mtimeNs: now(),
        typeflag: TypeFlag.None,
        linkname: new Uint8Array(0),
        devmajor: 0,
        devminor: 0,
        xattrs: [],
      })
    } else {
      appender.add(join(newRoot, change.path), relative)
    }
  }
  tar.close()
}
