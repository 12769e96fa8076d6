/**
 * `migrate --target-driver overlay2` from zfs and devicemapper, through their
 * test layouts of the vfs golden: its ZFS datasets on zfs-fuse
 * (`scripts/infra/zfs/vfs-to-zfs.py`) and its thin pool read `direct`, without
 * device-mapper (`scripts/devicemapper/vfs-to-devicemapper.ts`), each laid out
 * in a Docker root on a loop-mounted ext4 and converted there; then the checks
 * of test/overlay2Target.test.ts against the vfs golden migrated for vfs (the
 * store but cache IDs, dockerd 20.10 on overlay2 with the images, tags,
 * diffIDs and containers, `docker diff` as on vfs, each layer's `diff/` as
 * dockerd's own unpacking of the same images); nothing stays mounted or
 * attached, and the zfs pool and daemon are gone after.
 */
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { vfsToDevicemapper } from "../scripts/devicemapper/vfs-to-devicemapper.ts"
import { extractGolden, isRoot, repo, sh } from "./support/cli.ts"
import { haveDockerd } from "./support/dockerd.ts"
import { checkOverlay2Conversion } from "./support/overlay2Target.ts"

const have = (commands: string) => spawnSync("sh", ["-c", commands]).status === 0
const BASE_SKIP = !isRoot
  ? "needs root (loop mounts, device nodes, trusted.* xattrs, a real daemon)"
  : !haveDockerd
  ? "needs Debian's docker.io: run scripts/infra/dockerd/install.sh (CI does)"
  : !have("command -v mkfs.ext4 && command -v python3")
  ? "needs mkfs.ext4 and python3"
  : false
const ZFS_SKIP = BASE_SKIP !== false
  ? BASE_SKIP
  : !have("command -v zfs-fuse && command -v zpool && grep -q zfs-fuse /sbin/mount.zfs")
  ? "needs zfs-fuse: run scripts/zfs-fuse/install.sh (CI does)"
  : false
const DM_SKIP = BASE_SKIP !== false
  ? BASE_SKIP
  : !have("command -v thin_dump && command -v thin_restore && command -v rsync")
  ? "needs thin-provisioning-tools and rsync (CI installs them)"
  : false
if (ZFS_SKIP !== false) console.warn(`\n*** overlay2 target from zfs NOT RUN: ${ZFS_SKIP} ***\n`)
if (DM_SKIP !== false) console.warn(`\n*** overlay2 target from devicemapper NOT RUN: ${DM_SKIP} ***\n`)

const NAME = "overlay2-target"
const zfsInfra = path.join(repo, "scripts/infra/zfs")
const pools = () => spawnSync("zpool", ["list", "-H", "-o", "name"], { encoding: "utf8" }).stdout.trim()

test("zfs (the vfs golden on zfs-fuse datasets) -> overlay2: the vfs golden's store but cache IDs; dockerd 20.10 (overlay2) lists every image with its tags and the containers, docker save gives the diffIDs, docker diff as on vfs; every layer's diff/ equals dockerd's own unpacking of the same image; a second run changes nothing", { skip: ZFS_SKIP }, () => {
  // zfs-fuse is one daemon for the whole machine: a pool of our own, and the daemon stopped only if we started it and no pool is left.
  const pool = `o2target${process.pid}`
  const runningBefore = spawnSync("pgrep", ["-x", "zfs-fuse"]).status === 0
  const daemon = sh(`sh "$1/start.sh"`, zfsInfra).trim()
  try {
    checkOverlay2Conversion(NAME, {
      driver: "zfs",
      golden: "vfs",
      // The pool's file is off the ext4; the root (the datasets' mount points, graph/, containers/) on it.
      layOut: (root, base) => {
        sh(`python3 "$1/vfs-to-zfs.py" "$2" "$3" "$4/pool.img" --pool "$5"`, zfsInfra, extractGolden("vfs"), root, base, pool)
        return ["--storage-driver", "zfs", "--storage-opt", `zfs.fsname=${pool}/docker`]
      },
    })
  } finally {
    spawnSync("zpool", ["destroy", "-f", pool])
    if (!runningBefore && pools() === "") for (const pid of daemon.split(/\s+/)) spawnSync("sh", [path.join(zfsInfra, "stop.sh"), pid])
  }
})

test("devicemapper (the vfs golden in a thin pool, read direct without device-mapper) -> overlay2: the vfs golden's store but cache IDs; dockerd 20.10 (overlay2) lists every image with its tags and the containers, docker save gives the diffIDs, docker diff as on vfs; every layer's diff/ equals dockerd's own unpacking of the same image; a second run changes nothing", { skip: DM_SKIP }, () => {
  checkOverlay2Conversion(NAME, {
    driver: "devicemapper",
    golden: "vfs",
    layOut: (root) => {
      vfsToDevicemapper(extractGolden("vfs"), root, 64 * 1024 * 1024)
      return ["--storage-driver", "devicemapper", "--storage-opt", "dm.access=direct"]
    },
  })
})
