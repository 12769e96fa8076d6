/**
 * The thin pool metadata's superblock (the kernel's `thin_disk_superblock`,
 * little-endian, at byte 0): the pool's data block size and how many data
 * blocks it has, which a pool table must state exactly to be loaded
 * read-only (a bigger one would make the kernel grow the pool's metadata).
 *
 * @module
 */
import { readDeviceHead } from "./DeviceHead.ts"

const THIN_SUPERBLOCK_MAGIC = 27022010n

export interface ThinPoolGeometry {
  /** Sectors per data block. */
  readonly blockSectors: number
  readonly dataBlocks: number
}

/** Reads the geometry from the metadata file or device `metadata`. */
export const readThinPoolGeometry = async (metadata: string): Promise<ThinPoolGeometry> => {
  const superblock = await readDeviceHead(metadata, 512)
  if (superblock.readBigUInt64LE(32) !== THIN_SUPERBLOCK_MAGIC) throw new Error(`${metadata}: no thin pool superblock`)
  const blockSectors = superblock.readUInt32LE(336)
  // The data space map's root starts with its block count.
  const dataBlocks = Number(superblock.readBigUInt64LE(64))
  if (blockSectors === 0 || dataBlocks === 0) throw new Error(`${metadata}: thin pool superblock gives no data blocks`)
  return { blockSectors, dataBlocks }
}
