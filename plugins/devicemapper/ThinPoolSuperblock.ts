/**
 * The thin pool metadata's superblock (the kernel's `thin_disk_superblock`,
 * little-endian, at byte 0): the pool's data block size and how many data
 * blocks it has, which a pool table must state exactly to be loaded
 * read-only (a bigger one would make the kernel grow the pool's metadata).
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs/promises"

const THIN_SUPERBLOCK_MAGIC = 27022010n

export interface ThinPoolGeometry {
  /** Sectors per data block. */
  readonly blockSectors: number
  readonly dataBlocks: number
}

/** Reads the geometry from the metadata file or device `metadata`. */
export const readThinPoolGeometry = async (metadata: string): Promise<ThinPoolGeometry> => {
  const handle = await fs.open(metadata, "r")
  const superblock = Buffer.alloc(512)
  try {
    await handle.read(superblock, 0, superblock.length, 0)
  } finally {
    await handle.close()
  }
  if (superblock.readBigUInt64LE(32) !== THIN_SUPERBLOCK_MAGIC) throw new Error(`${metadata}: no thin pool superblock`)
  const blockSectors = superblock.readUInt32LE(336)
  // The data space map's root starts with its block count.
  const dataBlocks = Number(superblock.readBigUInt64LE(64))
  if (blockSectors === 0 || dataBlocks === 0) throw new Error(`${metadata}: thin pool superblock gives no data blocks`)
  return { blockSectors, dataBlocks }
}
