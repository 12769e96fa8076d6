/**
 * A freshly made ext4, loop-mounted, for benchmarks that create many files:
 * ext4 skips inodes deleted in the last minutes when it allocates new ones,
 * so a run right after the last run's files were removed measures that scan
 * (2 to 3 times slower here), not the work. A real migration meets no such
 * deletions. Needs root and `mkfs.ext4`.
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

/** Whether this machine can make one (root, `mkfs.ext4`). */
export const canMakeFreshExt4 = (): boolean =>
  process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v mkfs.ext4"]).status === 0

/** Runs `body` with a new ext4 of `size` (sparse, e.g. "4G") mounted at the directory it is given; unmounted and removed after. */
export const onFreshExt4 = <A>(size: string, body: (mountpoint: string) => A): A => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "cas-migrator-bench-ext4-"))
  const image = path.join(scratch, "fs.img")
  const mountpoint = path.join(scratch, "mnt")
  fs.mkdirSync(mountpoint)
  try {
    const made = spawnSync("sh", ["-c", `truncate -s "$3" "$1" && mkfs.ext4 -q -F "$1" && mount -o loop "$1" "$2"`, "sh", image, mountpoint, size], { encoding: "utf8" })
    if (made.status !== 0) throw new Error(`cannot make a loop-mounted ext4: ${made.stderr}`)
    try {
      return body(mountpoint)
    } finally {
      spawnSync("umount", [mountpoint])
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}
