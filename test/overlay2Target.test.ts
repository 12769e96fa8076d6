/**
 * `migrate --target-driver overlay2` on every golden, on a loop-mounted ext4:
 * the store equals a same-driver `migrate`'s but for driver and cache IDs;
 * Debian's dockerd 20.10 with `--storage-driver overlay2` lists every image
 * with its ID and tags and `docker save` gives the diffIDs; each layer's
 * `diff/` equals what dockerd's own overlay2 unpacks from `docker load` of
 * the same image (`export`ed from the graph) into a fresh root; containers are
 * listed with `Driver` overlay2 and (vfs) `docker diff` as on vfs; a second
 * run changes nothing; a generated busybox graph's image runs; SIGKILL at
 * moments of a run, then a re-run, ends as an uninterrupted run.
 */
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { changedPaths, extractGolden, isRoot, makeGraph, repo, runCli, runKilledAfter, sh, snapshot, tempDir } from "./support/cli.ts"
import { haveDockerd, withDockerd } from "./support/dockerd.ts"
import { cacheIds, checkOverlay2Conversion, loopExt4, readText, storeFiles, tree } from "./support/overlay2Target.ts"

const SKIP = !isRoot
  ? "needs root (loop mounts, device nodes, trusted.* xattrs, a real daemon)"
  : !haveDockerd
  ? "needs Debian's docker.io: run scripts/infra/dockerd/install.sh (CI does)"
  : spawnSync("sh", ["-c", "command -v mkfs.ext4 && command -v python3"]).status !== 0
  ? "needs mkfs.ext4 and python3"
  : false
if (SKIP !== false) console.warn(`\n*** overlay2 target tests NOT RUN: ${SKIP} ***\n`)

const NAME = "overlay2-target"

for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
  test(`${driver} golden -> overlay2: same store as migrate but driver and cache IDs; dockerd 20.10 (overlay2) lists every image with its tags, docker save gives the diffIDs; every layer's diff/ equals dockerd's own unpacking of the same image; a second run changes nothing`, { skip: SKIP }, () => {
    checkOverlay2Conversion(NAME, {
      driver,
      golden: driver,
      layOut: (root) => {
        fs.mkdirSync(root)
        sh(`tar --xattrs --xattrs-include='*' --numeric-owner -xpzf "$1" -C "$2"`, path.join(repo, "test/goldens", driver, "fixture.tar.gz"), root)
        return []
      },
    })
  })
}

const SCRIPT = `read x < /data/hello; read y < /etc/legacy-init; echo "$x $y"`

/** A stopped Docker 1.9 container of `image` on vfs: its -init layer adds `/etc/legacy-init`, its own `/data/hello` and deletes `/etc/gone-file`. */
const legacyContainer = (root: string, image: string, id: string) => {
  const dir = path.join(root, "containers", id)
  fs.mkdirSync(dir, { recursive: true })
  const config = {
    State: { Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: "", StartedAt: "2015-12-02T09:00:00.5Z", FinishedAt: "2015-12-02T09:00:01.25Z" },
    ID: id,
    Created: "2015-12-02T08:59:59.999999999Z",
    // The image has busybox's sh and echo only: read both layers' files with sh's builtins.
    Path: "/bin/sh",
    Args: ["-c", SCRIPT],
    Config: {
      Hostname: "4f3c2a1b0e9d", Domainname: "", User: "", AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false,
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh", "-c", SCRIPT], Image: "sample/app", Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: {},
    },
    Image: image,
    NetworkSettings: { Bridge: "", SandboxID: "", HairpinMode: false, Ports: null },
    ResolvConfPath: "", HostnamePath: "", HostsPath: "", LogPath: "", Name: "/legacy", RestartCount: 0, Driver: "vfs", ExecDriver: "native-0.2",
    MountLabel: "", ProcessLabel: "", AppArmorProfile: "", ExecIDs: null, HasBeenStartedBefore: true, HasBeenManuallyStopped: false, MountPoints: {}, Volumes: null, VolumesRW: null,
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config))
  fs.writeFileSync(path.join(dir, "hostconfig.json"), JSON.stringify({
    Binds: null, ContainerIDFile: "", LogConfig: { Type: "json-file", Config: {} }, NetworkMode: "none", PortBindings: {},
    RestartPolicy: { Name: "no", MaximumRetryCount: 0 }, VolumeDriver: "", VolumesFrom: null, Privileged: false,
  }))
  const vfs = path.join(root, "vfs", "dir")
  sh(`set -e
    cp -a "$1/$2" "$1/$3-init"; mkdir -p "$1/$3-init/etc"; echo init > "$1/$3-init/etc/legacy-init"; echo gone > "$1/$3-init/etc/gone-file"
    cp -a "$1/$3-init" "$1/$3"; mkdir "$1/$3/data"; echo hello-legacy > "$1/$3/data/hello"; rm "$1/$3/etc/gone-file"`, vfs, image, id)
}

for (const where of ["in the graph's root", "in another root (--target-root)"] as const) {
  test(`a generated busybox graph migrated to overlay2 ${where} runs on dockerd 20.10 (docker run prints ok); its legacy container is listed, docker diff shows its changes, docker start runs it with its files`, { skip: SKIP }, () => {
    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((file) => fs.existsSync(file))
    assert.ok(busybox !== undefined, "busybox-static is installed with docker.io")
    const disk = loopExt4(NAME)
    try {
      const elsewhere = where !== "in the graph's root"
      // Elsewhere: the legacy root off the loop disk, the new root on it (overlay2 needs a file system it supports).
      const root = elsewhere ? path.join(disk.base, "legacy", "docker") : path.join(disk.mountpoint, "docker")
      const daemonRoot = elsewhere ? path.join(disk.mountpoint, "docker") : root
      makeGraph(root, "vfs", ["--size", "2MiB", "--layers", "2", "--busybox", busybox])
      const repositories = JSON.parse(readText(path.join(root, "repositories-vfs"))) as { Repositories: Record<string, Record<string, string>> }
      const image = repositories.Repositories["sample/app"]!["latest"]!
      const id = "c0ffee".padEnd(64, "0")
      legacyContainer(root, image, id)
      const args = ["migrate", "--graph", root, "--target-driver", "overlay2", ...(elsewhere ? ["--target-root", daemonRoot] : []), "--json"]
      if (elsewhere) {
        // One rollback undoes both roots: the graph's exactly as it was, nothing left in the new one.
        fs.mkdirSync(daemonRoot)
        const before = snapshot(root)
        assert.equal(runCli(args).code, 0)
        assert.deepEqual(fs.readdirSync(path.join(daemonRoot, "containers", id)).sort(), ["config.v2.json", "hostconfig.json"])
        assert.equal(fs.existsSync(path.join(root, "containers", id, "config.v2.json")), false, "config.v2.json written in the legacy root")
        assert.equal(runCli(["rollback", "--graph", root, "--checksums", "--json"]).code, 0)
        assert.deepEqual(changedPaths(before, snapshot(root)), [])
        assert.deepEqual(fs.readdirSync(daemonRoot), [])
      }
      const result = runCli(args)
      assert.equal(result.code, 0, result.stderr)
      withDockerd(daemonRoot, "overlay2", ({ docker }) => {
        assert.equal(docker("run", "--rm", "--network", "none", "sample/app:latest", "/bin/echo", "ok").trim(), "ok")
        assert.match(docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"), new RegExp(`${id} legacy`))
        // The init layer's changes are not the container's (docker diff shows the read-write layer's).
        assert.deepEqual(docker("diff", id).trim().split("\n").sort(), ["A /data", "A /data/hello", "C /etc", "D /etc/gone-file"])
        assert.equal(docker("start", "-a", id).trim(), "hello-legacy init")
      })
    } finally {
      disk.release()
    }
  })
}

/**
 * What a run leaves, with the random IDs replaced by what they stand for: per
 * chain ID (or container) its directory's files, `lower` as chain IDs, its
 * `diff/` tree; the store but cache and mount IDs; what else is in overlay2/.
 */
const normalizedResult = (root: string, sinceNs: bigint) => {
  const store = path.join(root, "image", "overlay2")
  const home = path.join(root, "overlay2")
  const names = new Map<string, string>() // overlay2 ID -> what it stands for
  for (const [chain, cacheId] of cacheIds(store)) names.set(cacheId, `layer ${chain}`)
  const mounts = path.join(store, "layerdb", "mounts")
  for (const container of fs.existsSync(mounts) ? fs.readdirSync(mounts) : []) {
    names.set(readText(path.join(mounts, container, "mount-id")), `container ${container}`)
    const init = path.join(mounts, container, "init-id")
    if (fs.existsSync(init)) names.set(readText(init), `init ${container}`)
  }
  const links = new Map(fs.readdirSync(path.join(home, "l")).map((short) => [short, fs.readlinkSync(path.join(home, "l", short))]))
  const layers: Record<string, unknown> = {}
  for (const [id, name] of names) {
    const dir = path.join(home, id)
    const link = readText(path.join(dir, "link"))
    const lower = fs.existsSync(path.join(dir, "lower"))
      ? readText(path.join(dir, "lower")).split(":").map((l) => names.get(path.basename(path.dirname(links.get(path.basename(l)) ?? ""))) ?? `unknown ${l}`)
      : null
    layers[name] = {
      files: fs.readdirSync(dir).sort(),
      linked: links.get(link) === `../${id}/diff`,
      lower,
      diff: tree(path.join(dir, "diff"), sinceNs),
    }
  }
  const unnamed = fs.readdirSync(home).filter((name) => name !== "l" && !names.has(name))
  return { layers, unnamed, links: links.size, store: [...storeFiles(store)].sort() }
}

test("SIGKILL at moments spread over a run of migrate --target-driver overlay2 (vfs golden), each run resuming the last: the files of an uninterrupted run but for the random IDs, nothing half-made left", { skip: SKIP }, async () => {
  const sinceNs = BigInt(Date.now() - 60_000) * 1_000_000n
  const clean = extractGolden("vfs")
  const started = Date.now()
  const cleanRun = runCli(["migrate", "--graph", clean, "--target-driver", "overlay2", "--json"])
  const duration = Date.now() - started
  assert.equal(cleanRun.code, 1, cleanRun.stderr) // the golden's failing images, as a same-driver migrate
  const expected = normalizedResult(clean, sinceNs)
  assert.deepEqual(expected.unnamed, [])

  const killed = extractGolden("vfs")
  const points = 10
  let kills = 0
  for (let i = 1; i <= points; i++) {
    if (await runKilledAfter(["migrate", "--graph", killed, "--target-driver", "overlay2"], Math.round((duration * i) / (points + 1)))) kills++
  }
  assert.ok(kills >= 3, `only ${kills} of ${points} runs were killed before they finished`)
  const final = runCli(["migrate", "--graph", killed, "--target-driver", "overlay2", "--json"])
  assert.equal(final.code, 1, final.stderr)
  const result = normalizedResult(killed, sinceNs)
  assert.deepEqual(result, expected)
  const leftovers = sh(`find "$1" -name '.tmp-*'`, killed).trim()
  assert.equal(leftovers, "", "temporaries left")
})

test("a legacy overlay container's upper/ is copied into diff/ as it is: whiteouts, opaque directories, owners, modes, xattrs, times, hard links, devices, symlinks", { skip: SKIP }, async () => {
  const { copyOverlayUpper } = await import("../src/overlay2/CopyOverlayUpper.ts")
  const base = tempDir(NAME)
  const upper = path.join(base, "upper")
  const diff = path.join(base, "diff")
  fs.mkdirSync(diff)
  sh(`set -e
    mkdir -p "$1/etc/opaque" "$1/var"
    echo hosts > "$1/etc/hosts"; ln "$1/etc/hosts" "$1/etc/hosts-link"; ln -s ../etc/hosts "$1/var/link"
    mknod "$1/etc/gone" c 0 0; mknod "$1/var/null" c 1 3; mkfifo "$1/var/fifo"
    setfattr -n trusted.overlay.opaque -v y "$1/etc/opaque" 2>/dev/null || python3 -c 'import os,sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$1/etc/opaque"
    chown 1000:2000 "$1/etc/hosts"; chmod 4751 "$1/etc/hosts"; touch -h -d '2001-02-03 04:05:06.123456789' "$1/var/link" "$1/etc/hosts" "$1/etc/opaque"`, upper)
  copyOverlayUpper(new Uint8Array(Buffer.from(upper)), new Uint8Array(Buffer.from(diff)))
  assert.deepEqual(tree(diff, 1n << 62n), tree(upper, 1n << 62n))
  assert.ok(tree(upper, 1n << 62n).some((row) => row.includes("trusted.overlay.opaque")), "the opaque xattr was set")
})

test("too little space on the target is refused up front with the figures (exit 2), nothing written there; plan --target-driver predicts it", { skip: isRoot ? false : "needs root (tmpfs mount, golden extraction)" }, () => {
  const root = extractGolden("vfs")
  const small = path.join(tempDir(NAME), "small")
  fs.mkdirSync(small)
  sh(`mount -t tmpfs -o size=1m tmpfs "$1"`, small)
  try {
    type PlannedTarget = { exitCode: number; target: { neededBytes: number; freeBytes: number; fits: boolean } }
    const roomy = JSON.parse(runCli(["plan", "--graph", root, "--target-driver", "overlay2", "--json"]).stdout) as PlannedTarget
    assert.deepEqual([roomy.exitCode, roomy.target.fits], [1, true]) // 1: the golden's failing images
    const planned = runCli(["plan", "--graph", root, "--target-driver", "overlay2", "--target-root", small, "--json"])
    assert.equal(planned.code, 2, planned.stderr)
    const prediction = JSON.parse(planned.stdout) as PlannedTarget
    assert.equal(prediction.target.fits, false)
    // Another root also gets each container's files (all but the configs), which migrate copies.
    const containers = path.join(root, "containers")
    const copied = fs.readdirSync(containers).flatMap((id) =>
      fs.readdirSync(path.join(containers, id), { withFileTypes: true })
        .filter((entry) => entry.isFile() && !["config.json", "config.v2.json"].includes(entry.name))
        .map((entry) => fs.statSync(path.join(containers, id, entry.name)).size)
    ).reduce((a, b) => a + b, 0)
    assert.ok(copied > 0, "the vfs golden's containers have files to copy")
    // A container with config.v2.json in the graph's root is migrated again into another root: its layers' 64 KiB margins count there.
    const again = fs.readdirSync(containers).filter((id) => fs.existsSync(path.join(containers, id, "config.v2.json")))
      .flatMap((id) => [id, `${id}-init`]).filter((layer) => fs.existsSync(path.join(root, "vfs/dir", layer))).length
    assert.equal(prediction.target.neededBytes, roomy.target.neededBytes + copied + again * 64 * 1024)
    assert.ok(prediction.target.freeBytes < prediction.target.neededBytes)
    const refused = runCli(["migrate", "--graph", root, "--target-driver", "overlay2", "--target-root", small, "--json"])
    assert.equal(refused.code, 2, refused.stderr)
    const summary = JSON.parse(refused.stdout) as { exitCode: number; error: string; fatal: string }
    assert.equal(summary.error, "TargetSpaceError")
    assert.match(summary.fatal, /need about [0-9.]+ MB \(([0-9]+) bytes\), [0-9.]+ MB \([0-9]+ bytes\) are free/)
    assert.equal(Number(/\(([0-9]+) bytes\), /.exec(summary.fatal)?.[1]), prediction.target.neededBytes, "plan's figure is migrate's")
    assert.deepEqual(fs.readdirSync(small), [], "nothing written in the target")
  } finally {
    spawnSync("umount", [small])
  }
})

test("the space needed counts containers not yet migrated: an aufs container's changes, and with --target-root elsewhere its files (a log too); a migrated container counts nothing", { skip: isRoot ? false : "needs root (golden extraction)" }, () => {
  const root = extractGolden("aufs")
  const elsewhere = path.join(tempDir(NAME), "target")
  fs.mkdirSync(elsewhere)
  const needed = (...args: Array<string>) => {
    const run = runCli(["plan", "--graph", root, "--target-driver", "overlay2", ...args, "--json"])
    return (JSON.parse(run.stdout) as { target: { neededBytes: number } }).target.neededBytes
  }
  const container = "0c497e10148b51ed66320bdb88c5856aa099bd397a8f7d6e0cd1555dbc52daf2" // its image migrates
  const log = path.join(root, "containers", container, `${container}-json.log`)
  const [here, there] = [needed(), needed("--target-root", elsewhere)]
  fs.writeFileSync(path.join(root, "aufs/diff", container, "grown.bin"), Buffer.alloc(3_000_000))
  fs.writeFileSync(log, Buffer.alloc(2_000_000))
  assert.equal(needed() - here, 3_000_000, "the container's changes, in the same root")
  assert.equal(needed("--target-root", elsewhere) - there, 5_000_000, "its changes and its log, in another root")
  const migrated = runCli(["migrate", "--graph", root, "--target-driver", "overlay2", "--target-root", elsewhere, "--json"])
  assert.notEqual(migrated.code, 2, migrated.stderr)
  assert.ok(fs.existsSync(path.join(elsewhere, "containers", container, "config.v2.json")), "the container was migrated")
  const after = needed("--target-root", elsewhere)
  fs.appendFileSync(log, Buffer.alloc(1_000_000))
  assert.equal(needed("--target-root", elsewhere), after, "a migrated container's log counts nothing")
})
