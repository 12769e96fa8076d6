/**
 * devicemapper: every layer a thin device (ext4, files under `rootfs/`) in
 * one thin pool; Docker's JSON in `devicemapper/metadata/<id>` gives its
 * device id. A layer is read without device-mapper: `thin_dump` of the pool's
 * metadata (the loop-lvm file `devicemapper/devicemapper/metadata`, or
 * `--storage-opt dm.metadatadev=`) maps the device's blocks in the data file
 * (`devicemapper/devicemapper/data`, or `dm.datadev=`); they are copied into a
 * sparse image at their offsets and loop-mounted read-only (`noload`: the
 * journal is not replayed) for the view's scope. The pool is never written.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { type GraphId, parseGraphId } from "../src/Ids.ts"
import { runCommand } from "../src/platform/RunCommand.ts"
import { DriverError, StorageDriver } from "../src/StorageDriver.ts"

const failure = (reason: DriverError["reason"], detail: string, layer?: string) =>
  new DriverError({ driver: "devicemapper", reason, detail, ...(layer === undefined ? {} : { layer }) })

/** What `thin_dump` says: the block size and, per device, [virtual block, data block, length] runs. */
interface PoolMap {
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

interface DeviceInfo {
  readonly device_id: number
  readonly size: number
  readonly deleted?: boolean
}

const COPY = 1 << 20

export const layer = (graphRoot: string, options: ReadonlyMap<string, string> = new Map()) =>
  Layer.effect(
    StorageDriver,
    Effect.sync(() => {
      const home = path.join(graphRoot, "devicemapper")
      const metadataDir = path.join(home, "metadata")
      const poolMetadata = options.get("dm.metadatadev") ?? path.join(home, "devicemapper", "metadata")
      const poolData = options.get("dm.datadev") ?? path.join(home, "devicemapper", "data")
      let poolMap: Promise<PoolMap> | undefined
      const dump = () => (poolMap ??= runCommand("thin_dump", [poolMetadata]).then(parseThinDump))

      const deviceOf = async (id: string): Promise<DeviceInfo | undefined> => {
        const text = await fs.readFile(path.join(metadataDir, id), "utf8").catch(() => undefined)
        if (text === undefined) return undefined
        const info = JSON.parse(text) as DeviceInfo
        if (typeof info.device_id !== "number" || typeof info.size !== "number") throw new Error(`${metadataDir}/${id}: no device_id or size`)
        return info.deleted === true ? undefined : info
      }

      /** Copies the device's mapped blocks into a sparse image of its size. */
      const buildImage = async (info: DeviceInfo, image: string) => {
        const map = await dump()
        const out = await fs.open(image, "w")
        const source = await fs.open(poolData, "r")
        try {
          await out.truncate(info.size)
          const buffer = Buffer.alloc(COPY)
          for (const [virtual, data, length] of map.devices.get(info.device_id) ?? []) {
            let from = data * map.blockBytes
            let to = virtual * map.blockBytes
            for (let left = length * map.blockBytes; left > 0;) {
              const { bytesRead } = await source.read(buffer, 0, Math.min(left, COPY), from)
              if (bytesRead === 0) throw new Error(`${poolData} ends before block ${data + length}`)
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

      const open = (id: GraphId) =>
        Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              const info = await deviceOf(id)
              if (info === undefined) throw new Error(`no device for ${id} in ${metadataDir}`)
              const dir = await fs.mkdtemp(path.join(os.tmpdir(), `cas-migrator-dm-${id.slice(0, 12)}-`))
              try {
                await buildImage(info, path.join(dir, "device.img"))
                await fs.mkdir(path.join(dir, "mnt"))
                await runCommand("mount", ["-o", "ro,loop,noload", path.join(dir, "device.img"), path.join(dir, "mnt")])
              } catch (error) {
                await fs.rm(dir, { recursive: true, force: true })
                throw error
              }
              return dir
            },
            catch: (error) => failure("MountFailed", error instanceof Error ? error.message : String(error), id),
          }),
          (dir) =>
            Effect.promise(async () => {
              await runCommand("umount", [path.join(dir, "mnt")]).catch(() => runCommand("umount", ["-l", path.join(dir, "mnt")]).catch(() => undefined))
              await fs.rm(dir, { recursive: true, force: true })
            }),
        )

      return {
        name: "devicemapper",
        layerFiles: "snapshot" as const,
        layers: Effect.tryPromise({
          try: async () => {
            const names = await fs.readdir(metadataDir)
            const ids: Array<GraphId> = []
            for (const name of names) {
              const id = parseGraphId(name)
              if (id !== undefined && (await deviceOf(id)) !== undefined) ids.push(id)
            }
            return ids.sort()
          },
          catch: (error) => failure("Unreadable", `${metadataDir}: ${String(error)}`),
        }),
        exists: (id: GraphId) =>
          Effect.tryPromise({
            try: async () => (await deviceOf(id)) !== undefined,
            catch: (error) => failure("Unreadable", String(error), id),
          }),
        view: (id: GraphId) => Effect.map(open(id), (dir) => ({ root: path.join(dir, "mnt", "rootfs") })),
      }
    }),
  )
