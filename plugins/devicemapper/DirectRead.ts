/**
 * Way (b), without device-mapper: `thin_dump` of the pool's metadata maps each
 * device's virtual blocks to blocks of the data file; a device's mapped blocks
 * are copied into a sparse image at their offsets (so the image takes only
 * the space the device uses), which is then loop-mounted. The pool's files
 * are only ever read.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { runCommand } from "../../src/platform/RunCommand.ts"
import type { ThinDevice } from "./DockerDevices.ts"
import type { ThinDeviceAccess } from "./ThinDeviceAccess.ts"

/** What `thin_dump` says: the block size and, per device, [virtual block, data block, length] runs. */
export interface PoolMap {
  readonly blockBytes: number
  readonly devices: ReadonlyMap<number, ReadonlyArray<readonly [number, number, number]>>
}

/** Parses `thin_dump`'s XML (only the elements that map blocks). */
export const parseThinDump = (xml: string): PoolMap => {
  const attribute = (tag: string, name: string) => {
    const match = new RegExp(`\\b${name}="(\\d+)"`).exec(tag)
    if (match === null) throw new Error(`thin_dump: ${name} missing in ${tag}`)
    return Number(match[1])
  }
  const superblock = /<superblock[^>]*>/.exec(xml)
  if (superblock === null) throw new Error("thin_dump: no superblock")
  const blockBytes = attribute(superblock[0], "data_block_size") * 512
  const devices = new Map<number, Array<readonly [number, number, number]>>()
  let current: Array<readonly [number, number, number]> | undefined
  for (const tag of xml.match(/<[^>]+>/g) ?? []) {
    if (tag.startsWith("<device ")) {
      current = []
      devices.set(attribute(tag, "dev_id"), current)
    } else if (tag.startsWith("<range_mapping ")) {
      current?.push([attribute(tag, "origin_begin"), attribute(tag, "data_begin"), attribute(tag, "length")])
    } else if (tag.startsWith("<single_mapping ")) {
      current?.push([attribute(tag, "origin_block"), attribute(tag, "data_block"), 1])
    }
  }
  return { blockBytes, devices }
}

const COPY = 1 << 20

/** Reads devices from the pool files `metadata` and `data`; images are made in `scratch`. */
export const directRead = (metadata: string, data: string, scratch: string): ThinDeviceAccess => {
  let poolMap: Promise<PoolMap> | undefined
  const dump = () => (poolMap ??= runCommand("thin_dump", [metadata]).then(parseThinDump))

  /** Copies the device's mapped blocks into a sparse image of its size. */
  const buildImage = async (device: ThinDevice, image: string) => {
    const map = await dump()
    if (!map.devices.has(device.deviceId)) throw new Error(`the pool in ${metadata} has no thin device ${device.deviceId}`)
    const out = await fs.open(image, "wx", 0o600)
    const source = await fs.open(data, "r")
    try {
      await out.truncate(device.size)
      const buffer = Buffer.alloc(COPY)
      for (const [virtual, block, length] of map.devices.get(device.deviceId) ?? []) {
        let from = block * map.blockBytes
        let to = virtual * map.blockBytes
        for (let left = length * map.blockBytes; left > 0;) {
          const { bytesRead } = await source.read(buffer, 0, Math.min(left, COPY), from)
          if (bytesRead === 0) throw new Error(`${data} ends before block ${block + length}`)
          await out.write(buffer, 0, bytesRead, to)
          from += bytesRead
          to += bytesRead
          left -= bytesRead
        }
      }
    } finally {
      await out.close()
      await source.close()
    }
  }

  return {
    name: "direct",
    open: async (device, label) => {
      await fs.mkdir(scratch, { recursive: true })
      const dir = await fs.mkdtemp(path.join(scratch, `cas-migrator-dm-image-${label}-`))
      const image = path.join(dir, "device.img")
      const release = () => fs.rm(dir, { recursive: true, force: true })
      try {
        await buildImage(device, image)
      } catch (error) {
        await release()
        throw error
      }
      return { path: image, isFile: true, release }
    },
    close: async () => {},
  }
}
