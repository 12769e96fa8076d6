/**
 * Mounting a thin device's filesystem read-only without writing to it: the
 * journal is not replayed (ext4 `noload`, xfs `norecovery`), and xfs is told
 * to ignore that every snapshot has its parent's UUID (`nouuid`, as Docker
 * mounted it).
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs/promises"
import { runCommand } from "../../src/platform/RunCommand.ts"

/** The options for the filesystem whose superblock `device` holds. */
const readOnlyOptions = async (device: string): Promise<string> => {
  const handle = await fs.open(device, "r")
  const head = Buffer.alloc(2048)
  try {
    await handle.read(head, 0, head.length, 0)
  } finally {
    await handle.close()
  }
  if (head.toString("latin1", 0, 4) === "XFSB") return "ro,norecovery,nouuid"
  if (head.readUInt16LE(1024 + 56) === 0xef53) return "ro,noload"
  return "ro"
}

/** Mounts `device` (a block device, or an image file through a loop device) on `dir`. */
export const mountReadOnly = async (device: string, isFile: boolean, dir: string) => {
  const options = await readOnlyOptions(device)
  await runCommand("mount", ["-o", isFile ? `${options},loop` : options, device, dir])
}
