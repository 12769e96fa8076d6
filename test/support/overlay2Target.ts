/**
 * What the `migrate --target-driver overlay2` tests share: a loop-mounted
 * ext4 (a file system overlay2 supports), the tree of a `diff/` as one line an
 * entry, a store's cache IDs and files, and the whole check of one source
 * graph converted to overlay2 against a same-driver `migrate` of the same
 * golden, dockerd 20.10 on overlay2 and dockerd's own unpacking of the same
 * images.
 *
 * @module
 */
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { extractGolden, runCli, sh, snapshot, tempDir } from "./cli.ts"
import { withDockerd } from "./dockerd.ts"

/** A fresh 1 GiB ext4 loop-mounted on `mountpoint`, under a directory of its own (`base`); `release` unmounts and removes it. */
export const loopExt4 = (name: string) => {
  const base = tempDir(name)
  const image = path.join(base, "fs.img")
  const mountpoint = path.join(base, "mnt")
  fs.mkdirSync(mountpoint)
  sh(`truncate -s 1G "$1" && mkfs.ext4 -q -F "$1" && mount -o loop "$1" "$2"`, image, mountpoint)
  return {
    base,
    mountpoint,
    release: () => {
      spawnSync("umount", [mountpoint])
      fs.rmSync(image, { force: true })
    },
  }
}

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/**
 * Every entry under `dir` (not `dir` itself) as one line: name, type, mode,
 * owner, size, mtime (left out where both trees set it when unpacking: implied
 * directories and whiteouts have no time of their own), device, content or
 * link target hash, xattrs, and the first name of its hard-link group.
 */
const TREE_SCRIPT = String.raw`
import os, sys, json, hashlib, stat
root = os.fsencode(sys.argv[1]); since = int(sys.argv[2])
rows = []; first = {}
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(d, n); rel = os.path.relpath(p, root); st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        content = ""
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f: content = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode): content = os.readlink(p).hex()
        xattrs = sorted((k, os.getxattr(p, k, follow_symlinks=False).hex()) for k in os.listxattr(p, follow_symlinks=False))
        whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        mtime = None if whiteout or st.st_mtime_ns >= since else st.st_mtime_ns
        link = ""
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            link = first.setdefault(st.st_ino, rel).hex()
        rows.append([rel.hex(), kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size if not stat.S_ISDIR(st.st_mode) else 0, mtime, st.st_rdev, content, xattrs, link])
print(json.dumps(sorted(rows)))
`

/** The entries under `dir`, one JSON line each; mtimes from `sinceNs` on (set by the test's own unpacking) are left out. */
export const tree = (dir: string, sinceNs: bigint): Array<string> => {
  const result = spawnSync("python3", ["-c", TREE_SCRIPT, dir, String(sinceNs)], { encoding: "utf8", maxBuffer: 1 << 28 })
  if (result.status !== 0) throw new Error(`tree of ${dir}: ${result.stderr}`)
  return (JSON.parse(result.stdout) as Array<unknown>).map((row) => JSON.stringify(row))
}

export const readText = (file: string) => fs.readFileSync(file, "utf8")

/** Chain ID -> cache ID of a store's layers. */
export const cacheIds = (store: string): Map<string, string> => {
  const layers = path.join(store, "layerdb", "sha256")
  return new Map(fs.readdirSync(layers).map((hex) => [hex, readText(path.join(layers, hex, "cache-id"))]))
}

/** Every file of a store (path -> content hash) except what differs by design between drivers: cache IDs. */
export const storeFiles = (store: string): Map<string, string> => {
  const out = new Map<string, string>()
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      const relative = path.relative(store, full)
      if (entry.isDirectory()) walk(full)
      else if (entry.name !== "cache-id" && !relative.startsWith("layerdb/mounts") && entry.name !== ".cas-migrator.lock") {
        out.set(relative, `${(fs.lstatSync(full).mode & 0o7777).toString(8)} ${sha(fs.readFileSync(full))}`)
      }
    }
  }
  walk(store)
  return out
}

interface Report {
  readonly exitCode: number
  readonly driver: string
  readonly images: ReadonlyArray<{ readonly id: string; readonly status: string; readonly imageId?: string }>
  readonly containers: ReadonlyArray<{ readonly id: string; readonly status: string; readonly mount?: boolean; readonly warning?: string }>
}

/** `docker diff` of each container, sorted (its changes over its image and init layer). */
const diffs = (docker: (...args: Array<string>) => string, ids: ReadonlyArray<string>) =>
  new Map(ids.map((id) => [id, docker("diff", id).trim().split("\n").sort()]))

const untar = (archive: string) => {
  const dir = `${archive}.d`
  fs.mkdirSync(dir)
  sh(`tar -xf "$1" -C "$2"`, archive, dir)
  return dir
}

/** A legacy graph to convert: laid out at `root` (on the ext4), with the options that name its driver to the CLI. */
export interface Overlay2Source {
  /** The graph's driver, as `migrate` finds it (from the root, or the options `layOut` gives). */
  readonly driver: string
  /** The golden whose own-driver `migrate` is the reference (the vfs golden for a graph laid out from it). */
  readonly golden: string
  /** Makes the legacy Docker root `root` (`base` is scratch space off the ext4); the CLI's driver options for it. */
  readonly layOut: (root: string, base: string) => ReadonlyArray<string>
}

/**
 * The source graph converted with `migrate --target-driver overlay2` on a
 * loop-mounted ext4: the same images and store as its golden's same-driver
 * `migrate` but cache IDs, the overlay2 layout, verify's problems as there,
 * graph/ untouched, a second run changing nothing; dockerd 20.10 on overlay2
 * lists every image with its tags, `docker save` gives the diffIDs, the
 * converted containers are listed (and for the vfs golden, or a graph laid out
 * from it, `docker diff` of each equals dockerd's on the vfs golden); each
 * layer's `diff/` equals dockerd's own overlay2 unpacking of `docker load` of
 * the same images, `export`ed from the source graph; nothing the source
 * driver mounted or attached stays.
 */
export const checkOverlay2Conversion = (name: string, source: Overlay2Source) => {
  const sinceNs = BigInt(Date.now() - 60_000) * 1_000_000n
  // The reference: the same golden migrated for its own driver.
  const same = extractGolden(source.golden)
  const sameReport = JSON.parse(runCli(["migrate", "--graph", same, "--json"]).stdout) as Report
  const disk = loopExt4(name)
  try {
    const root = path.join(disk.mountpoint, "docker")
    const options = source.layOut(root, disk.base)
    // What dockerd's own overlay2 is given: every image, straight from the graph.
    const archive = path.join(disk.base, "images.tar")
    const exported = runCli(["export", "--graph", root, ...options, "--all", "--output", archive])
    assert.notEqual(exported.code, 2, exported.stderr)
    const graphBefore = snapshot(path.join(root, "graph"))

    const result = runCli(["migrate", "--graph", root, ...options, "--target-driver", "overlay2", "--json"])
    const report = JSON.parse(result.stdout) as Report
    assert.equal(report.driver, source.driver, "the source driver")
    assert.equal(report.exitCode, sameReport.exitCode, result.stderr)
    assert.deepEqual(
      report.images.map((i) => [i.id, i.status, i.imageId]),
      sameReport.images.map((i) => [i.id, i.status, i.imageId]),
      "image IDs as a same-driver migrate",
    )
    const store = path.join(root, "image", "overlay2")
    assert.deepEqual(storeFiles(store), storeFiles(path.join(same, "image", source.golden)), `image/overlay2 equals image/${source.golden} but cache IDs`)
    const ours = cacheIds(store)
    for (const [chain, cacheId] of ours) {
      assert.match(cacheId, /^[0-9a-f]{64}$/, `cache-id of ${chain}`)
      const dir = path.join(root, "overlay2", cacheId)
      const link = readText(path.join(dir, "link"))
      assert.match(link, /^[A-Z2-7]{26}$/)
      assert.equal(fs.readlinkSync(path.join(root, "overlay2", "l", link)), `../${cacheId}/diff`)
      const parent = fs.existsSync(path.join(store, "layerdb", "sha256", chain, "parent"))
      assert.equal(fs.existsSync(path.join(dir, "lower")), parent, `lower of ${chain}`)
      assert.equal(fs.existsSync(path.join(dir, "work")), parent, `work of ${chain}`)
    }
    // verify rebuilds every layer's tar from its tar-split and our diff/: only the golden's own faults, as for its own driver.
    const problems = (dir: string, storeDriver: string) =>
      (JSON.parse(runCli(["verify", "--graph", dir, "--storage-driver", storeDriver, "--json"]).stdout) as {
        problems: Array<{ kind: string; item: string; problem: string }>
      }).problems.map((p) => `${p.kind} ${p.item}: ${p.problem}`).sort()
    assert.deepEqual(problems(root, "overlay2"), problems(same, source.golden), "verify: the same problems as the same-driver store")
    // helper files are what migrate writes into graph/ too; layer data is untouched
    const graphAfter = snapshot(path.join(root, "graph"))
    for (const [file, value] of graphBefore) assert.equal(graphAfter.get(file), value, `graph/${file} changed`)

    // A second run changes nothing.
    const overlayBefore = snapshot(path.join(root, "overlay2"))
    const storeBefore = snapshot(store)
    assert.equal(runCli(["migrate", "--graph", root, ...options, "--target-driver", "overlay2", "--json"]).code, sameReport.exitCode)
    assert.deepEqual(snapshot(path.join(root, "overlay2")), overlayBefore, "second run: overlay2/")
    assert.deepEqual(snapshot(store), storeBefore, "second run: image/overlay2")
    // What a driver mounts or attaches to read its layers (zfs datasets, thin devices on loops) is gone.
    assert.deepEqual(fs.readFileSync("/proc/mounts", "utf8").split("\n").filter((line) => line.includes(`${root}/`)), [], "a layer stayed mounted")
    assert.deepEqual(spawnSync("losetup", ["-a"], { encoding: "utf8" }).stdout.split("\n").filter((line) => line.includes(`${root}/`)), [], "a loop device stayed attached")

    const expected = JSON.parse(readText(path.join(store, "repositories.json"))) as {
      Repositories: Record<string, Record<string, string>>
    }
    const lying = new Set<string>()
    // Every container the golden's migration gives a mount (two: with and without an -init layer).
    const converted = report.containers.filter((c) => c.status === "migrated" && c.mount === true).map((c) => c.id)
    assert.ok(converted.length >= 2, `containers converted: ${JSON.stringify(report.containers)}`)
    let changes = new Map<string, Array<string>>()
    withDockerd(root, "overlay2", ({ docker, tryDocker }) => {
      const containers = new Set(docker("ps", "-a", "--no-trunc", "--format", "{{.ID}}").trim().split("\n"))
      for (const id of converted) assert.ok(containers.has(id), `container ${id} not listed: ${[...containers].join(", ")}`)
      for (const id of converted) {
        const config = JSON.parse(readText(path.join(root, "containers", id, "config.v2.json"))) as { Driver: string }
        assert.equal(config.Driver, "overlay2")
      }
      changes = diffs(docker, converted)
      const listed = new Set(docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").trim().split("\n"))
      for (const [repository, refs] of Object.entries(expected.Repositories)) {
        for (const [reference, imageId] of Object.entries(refs)) {
          if (reference.includes("@")) continue
          assert.ok(listed.has(`${reference} ${imageId}`), `${reference} ${imageId} not listed (${repository}): ${[...listed].join(", ")}`)
        }
      }
      for (const imageId of new Set(Object.values(expected.Repositories).flatMap((refs) => Object.values(refs)))) {
        const saved = path.join(disk.base, `${imageId.slice(7, 19)}.tar`)
        const save = tryDocker("save", "-o", saved, imageId)
        // A layer whose pre-existing helper files hold wrong values is trusted as Docker trusted them; save finds it.
        if (save.status !== 0 && save.stderr.includes("could not verify layer data") && result.stderr.includes("as its helper files say")) {
          lying.add(imageId)
          continue
        }
        assert.equal(save.status, 0, save.stderr)
        const dir = untar(saved)
        const [entry] = JSON.parse(readText(path.join(dir, "manifest.json"))) as Array<{ Config: string; Layers: Array<string> }>
        const config = JSON.parse(readText(path.join(dir, entry!.Config))) as { rootfs: { diff_ids: Array<string> } }
        const hashes = entry!.Layers.map((l) => `sha256:${sha(fs.readFileSync(path.join(dir, l)))}`)
        assert.deepEqual(hashes, config.rootfs.diff_ids, `docker save ${imageId}`)
      }
    })
    assert.ok(lying.size <= 1, `images whose saved layers differ from their diffIDs: ${[...lying].join(", ")}`)

    if (source.golden === "vfs") {
      // The legacy changes, as a daemon reading the legacy driver's own layers finds them.
      withDockerd(same, "vfs", ({ docker }) => assert.deepEqual(diffs(docker, converted), changes, "docker diff on overlay2 vs on vfs"))
    }

    // dockerd's own overlay2, on a fresh root on the same file system, loads the same images.
    const fresh = path.join(disk.mountpoint, "fresh")
    withDockerd(fresh, "overlay2", ({ docker }) => void docker("load", "-i", archive))
    const theirs = cacheIds(path.join(fresh, "image", "overlay2"))
    let compared = 0
    for (const [chain, theirCacheId] of theirs) {
      const ourCacheId = ours.get(chain)
      if (ourCacheId === undefined) continue
      const mine = tree(path.join(root, "overlay2", ourCacheId, "diff"), sinceNs)
      const reference = tree(path.join(fresh, "overlay2", theirCacheId, "diff"), sinceNs)
      assert.deepEqual(mine, reference, `layer ${chain}: our diff/ differs from dockerd's`)
      compared++
    }
    assert.ok(compared >= 5, `only ${compared} layers compared with dockerd's`)
  } finally {
    disk.release()
  }
}
