/**
 * The btrfs plugin on a real btrfs filesystem (a loop-mounted image): the
 * btrfs golden laid out as Docker 1.9's btrfs driver made it (a subvolume per
 * base layer, a snapshot of the parent's for each child; scripts/btrfs-layout.sh),
 * then `checksums` and `migrate` give exactly the btrfs golden's files.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { extractGolden, isRoot, repo, runCli, sh, tempDir } from "./support/cli.ts"
import { differences, type Expected } from "./support/golden.ts"

const haveBtrfs = spawnSync("sh", ["-c", "command -v mkfs.btrfs && command -v btrfs && command -v rsync"]).status === 0
const SKIP = !isRoot ? "needs root (loop mount)" : !haveBtrfs ? "needs btrfs-progs and rsync (CI installs them)" : false
if (SKIP !== false) console.warn(`\n*** btrfs tests NOT RUN: ${SKIP} ***\n`)

test("the btrfs golden on real btrfs subvolumes and snapshots: checksums and migrate give the golden's files", { skip: SKIP }, () => {
  const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/btrfs/expected.json"), "utf8")) as Expected
  const source = extractGolden("btrfs")
  const base = tempDir("btrfs-fs")
  const mountpoint = path.join(base, "mnt")
  fs.mkdirSync(mountpoint)
  sh(`truncate -s 1G "$1/img" && mkfs.btrfs -q -f "$1/img" && mount -o loop "$1/img" "$2"`, base, mountpoint)
  try {
    const root = path.join(mountpoint, "docker")
    sh(`bash "$1/scripts/btrfs-layout.sh" "$2" "$3"`, repo, source, root)
    const subvolumes = sh(`btrfs subvolume list "$1"`, mountpoint).trim().split("\n")
    assert.ok(subvolumes.length >= 20, "the layers are not subvolumes")
    assert.equal(runCli(["checksums", "--graph", root]).code, 0)
    assert.equal(runCli(["migrate", "--graph", root]).code, 1) // the golden's failing images
    assert.deepEqual(differences(root, expected), [])
  } finally {
    sh(`umount "$1"`, mountpoint)
  }
})
