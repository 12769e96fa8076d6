/**
 * The first bytes of a device or an image file, where superblocks are.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs/promises"

/** Reads `length` bytes from the start of `file` (zeros past its end). */
export const readDeviceHead = async (file: string, length: number): Promise<Buffer> => {
  const handle = await fs.open(file, "r")
  const head = Buffer.alloc(length)
  try {
    await handle.read(head, 0, length, 0)
  } finally {
    await handle.close()
  }
  return head
}
