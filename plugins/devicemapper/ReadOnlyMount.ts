/**
 * Mounting a thin device's filesystem read-only without writing to it: the
 * journal is not replayed (ext4 `noload`, xfs `norecovery`), and xfs is told
 * to ignore that every snapshot has its parent's UUID (`nouuid`, as Docker
 * mounted it).
 *
 * @module
 */
import { runCommand } from "../../src/platform/RunCommand.ts"
import { readDeviceHead } from "./DeviceHead.ts"

/** The options for the filesystem whose superblock `device` holds. */
const readOnlyOptions = async (device: string): Promise<string> => {
  const head = await readDeviceHead(device, 2048)
  if (head.toString("latin1", 0, 4) === "XFSB") return "ro,norecovery,nouuid"
  if (head.readUInt16LE(1024 + 56) === 0xef53) return "ro,noload"
  return "ro"
}

/** Mounts `device` (a block device, or an image file through a loop device) on `dir`. */
export const mountReadOnly = async (device: string, isFile: boolean, dir: string) => {
  const options = await readOnlyOptions(device)
  await runCommand("mount", ["-o", isFile ? `${options},loop` : options, device, dir])
}
