/**
 * Way (b), without device-mapper: `thin_dump --dev-id` of the pool's metadata
 * maps the device's virtual blocks to blocks of the data file, streamed (a
 * pool's whole map may not fit in memory); the mapped blocks are copied into
 * a sparse image at their offsets (so the image takes only the space the
 * device uses), which is then loop-mounted. The pool's files are only ever
 * read.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { scratchPrefix } from "../StaleScratch.ts"
import type { ThinDevice } from "./DockerDevices.ts"
import type { ThinDeviceAccess } from "./ThinDeviceAccess.ts"

/** A run of a device's blocks: `length` virtual blocks from `virtual` are data blocks from `data`. */
export interface BlockRun {
  readonly virtual: number
  readonly data: number
  readonly length: number
}

const attribute = (tag: string, name: string) => {
  const match = new RegExp(`\\b${name}="(\\d+)"`).exec(tag)
  if (match === null) throw new Error(`thin_dump: ${name} missing in ${tag}`)
  return Number(match[1])
}

/** One line of `thin_dump`'s XML: the pool's block size, a run of blocks, or nothing we need. */
export const parseThinDumpLine = (line: string): { readonly blockBytes: number } | BlockRun | undefined => {
  const tag = line.trim()
  if (tag.startsWith("<superblock ")) return { blockBytes: attribute(tag, "data_block_size") * 512 }
  if (tag.startsWith("<range_mapping ")) {
    return { virtual: attribute(tag, "origin_begin"), data: attribute(tag, "data_begin"), length: attribute(tag, "length") }
  }
  if (tag.startsWith("<single_mapping ")) return { virtual: attribute(tag, "origin_block"), data: attribute(tag, "data_block"), length: 1 }
  return undefined
}

/** The runs of one device, as `thin_dump --dev-id` prints them. */
async function* deviceRuns(metadata: string, deviceId: number): AsyncGenerator<BlockRun & { readonly blockBytes: number }> {
  const dump = spawn("thin_dump", ["--dev-id", String(deviceId), metadata], { stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  dump.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => dump.on("close", resolve))
  // A command that did not start may never end its stdout: wait to know it did.
  await new Promise<void>((resolve, reject) => {
    dump.once("spawn", resolve)
    dump.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "ENOENT" ? new Error("thin_dump is not installed (Debian: thin-provisioning-tools); dm.access=direct needs it") : error))
  })
  let blockBytes: number | undefined
  let readToEnd = false
  try {
    for await (const line of createInterface({ input: dump.stdout, crlfDelay: Infinity })) {
      const parsed = parseThinDumpLine(line)
      if (parsed === undefined) continue
      if ("blockBytes" in parsed) blockBytes = parsed.blockBytes
      else if (blockBytes === undefined) throw new Error("thin_dump: a mapping before the superblock")
      else yield { ...parsed, blockBytes }
    }
    readToEnd = true
  } finally {
    // Stopped early (an error, or the copy gave up): thin_dump need not go on.
    if (!readToEnd) dump.kill()
  }
  const code = await exited
  if (code !== 0) throw new Error(`thin_dump --dev-id ${deviceId} ${metadata}: ${stderr.trim().split("\n").slice(-2).join(" ") || `exit ${code}`}`)
  if (blockBytes === undefined) throw new Error(`thin_dump ${metadata}: no superblock`)
}

const COPY = 1 << 20

/** Reads devices from the pool files `metadata` and `data`; images are made in `scratch`. */
export const directRead = (metadata: string, data: string, scratch: string): ThinDeviceAccess => {
  // thin_dump opens a block device exclusively (O_EXCL): while one runs on a
  // pool given as devices (dm.metadatadev), another fails with EBUSY. Images
  // are built one at a time there; on files they are built in parallel.
  const metadataIsDevice = fs.stat(metadata).then((stat) => stat.isBlockDevice(), () => false)
  let previous: Promise<unknown> = Promise.resolve()
  const oneAtATime = <A>(work: () => Promise<A>): Promise<A> => {
    const run = previous.then(work, work)
    previous = run.catch(() => undefined)
    return run
  }
  const buildImage = async (device: ThinDevice, image: string) =>
    (await metadataIsDevice) ? oneAtATime(() => copyDevice(device, image)) : copyDevice(device, image)

  /** Copies the device's mapped blocks into a sparse image of its size. */
  const copyDevice = async (device: ThinDevice, image: string) => {
    const out = await fs.open(image, "wx", 0o600)
    const source = await fs.open(data, "r")
    try {
      await out.truncate(device.size)
      const buffer = Buffer.alloc(COPY)
      let mapped = 0
      for await (const run of deviceRuns(metadata, device.deviceId)) {
        mapped += run.length
        let from = run.data * run.blockBytes
        let to = run.virtual * run.blockBytes
        if (to + run.length * run.blockBytes > device.size) throw new Error(`thin device ${device.deviceId} maps blocks beyond its size ${device.size}`)
        for (let left = run.length * run.blockBytes; left > 0;) {
          const { bytesRead } = await source.read(buffer, 0, Math.min(left, COPY), from)
          if (bytesRead === 0) throw new Error(`${data} ends before block ${run.data + run.length}`)
          await out.write(buffer, 0, bytesRead, to)
          from += bytesRead
          to += bytesRead
          left -= bytesRead
        }
      }
      if (mapped === 0) throw new Error(`the pool in ${metadata} has no blocks for thin device ${device.deviceId}`)
    } finally {
      await out.close()
      await source.close()
    }
  }

  return {
    name: "direct",
    open: async (device, label) => {
      await fs.mkdir(scratch, { recursive: true })
      const dir = await fs.mkdtemp(scratchPrefix(scratch, "dm-image", label))
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
    sweepStale: () => Promise.resolve([]), // its images are scratch directories, swept with them
    close: async () => {},
  }
}
