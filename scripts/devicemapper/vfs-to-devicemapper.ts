/**
 * Lays a vfs-layout legacy graph out as Docker's devicemapper driver (loop-lvm)
 * made it, without device-mapper: every layer an ext4 (or, as with Docker's
 * `dm.fs=xfs`, xfs) thin device whose files
 * are under `rootfs/`, a child a snapshot of its parent (blocks it did not
 * change shared with it), all in one thin pool made of the two loopback files
 * `devicemapper/devicemapper/{data,metadata}` (the metadata written by
 * `thin_restore` from Debian's thin-provisioning-tools), with Docker's JSON
 * metadata in `devicemapper/metadata/`. Needs root (loop mounts), mkfs.ext4
 * (or mkfs.xfs), rsync and thin_restore.
 *
 *   bun scripts/devicemapper/vfs-to-devicemapper.ts SRC_ROOT DST_ROOT [--device-size 64MiB] [--fs ext4|xfs]
 *
 * xfs needs devices of 300 MiB at least.
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { Buffer } from "node:buffer"
import { copyGraphFiles, thinDevicePlan, writeDockerMetadata } from "./DockerThinLayout.ts"

/** 64 KiB thin blocks (128 sectors), as Docker's pool. */
const BLOCK = 64 * 1024
const ZERO_BLOCK = Buffer.alloc(BLOCK)
const run = (command: string, args: Array<string>) => execFileSync(command, args, { stdio: ["ignore", "pipe", "pipe"] })

interface Device {
  readonly id: number
  /** Virtual block -> data block. */
  readonly blocks: Map<number, number>
}

export const vfsToDevicemapper = (src: string, dst: string, deviceSize: number, filesystem: "ext4" | "xfs" = "ext4") => {
  const home = path.join(dst, "devicemapper")
  const pool = path.join(home, "devicemapper")
  fs.mkdirSync(path.join(home, "mnt"), { recursive: true })
  fs.mkdirSync(pool, { recursive: true })
  copyGraphFiles(src, dst)

  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vfs-to-dm-"))
  const dataFile = path.join(pool, "data")
  const data = fs.openSync(dataFile, "w")
  let nextDataBlock = 0
  const devices = new Map<string, Device>()
  const images = new Map<string, string>()
  const block = Buffer.alloc(BLOCK)
  const other = Buffer.alloc(BLOCK)

  /** Maps the image's non-zero blocks; blocks equal to the parent's at the same place are shared. */
  const record = (name: string, image: string, parent: string | undefined) => {
    const parentDevice = parent === undefined ? undefined : devices.get(parent)
    const parentImage = parent === undefined ? undefined : images.get(parent)
    const fd = fs.openSync(image, "r")
    const parentFd = parentImage === undefined ? undefined : fs.openSync(parentImage, "r")
    const blocks = new Map<number, number>()
    for (let virtual = 0; virtual * BLOCK < deviceSize; virtual++) {
      fs.readSync(fd, block, 0, BLOCK, virtual * BLOCK)
      if (parentFd !== undefined && parentDevice !== undefined && parentDevice.blocks.has(virtual)) {
        fs.readSync(parentFd, other, 0, BLOCK, virtual * BLOCK)
        if (block.equals(other)) {
          blocks.set(virtual, parentDevice.blocks.get(virtual)!)
          continue
        }
      }
      if (block.equals(ZERO_BLOCK)) continue
      fs.writeSync(data, block, 0, BLOCK, nextDataBlock * BLOCK)
      blocks.set(virtual, nextDataBlock++)
    }
    fs.closeSync(fd)
    if (parentFd !== undefined) fs.closeSync(parentFd)
    const device = { id: devices.size + 1, blocks }
    devices.set(name, device)
    images.set(name, image)
    return device
  }

  const writeImage = (name: string, parent: string | undefined, tree: string | undefined) => {
    const image = path.join(work, `${name}.img`)
    if (parent === undefined) {
      fs.writeFileSync(image, "")
      fs.truncateSync(image, deviceSize)
      if (filesystem === "xfs") run("mkfs.xfs", ["-q", "-f", image])
      else run("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image])
    } else {
      run("cp", ["--sparse=always", images.get(parent)!, image])
    }
    if (tree !== undefined) {
      const mnt = path.join(work, "mnt")
      fs.mkdirSync(mnt, { recursive: true })
      run("mount", ["-o", filesystem === "xfs" ? "loop,nouuid" : "loop", image, mnt])
      try {
        fs.mkdirSync(path.join(mnt, "rootfs"), { recursive: true })
        run("rsync", ["-aHAX", "--delete", "--numeric-ids", `${tree}/`, `${path.join(mnt, "rootfs")}/`])
      } finally {
        run("umount", [mnt])
      }
    }
    return record(name, image, parent)
  }

  const plan = thinDevicePlan(src)
  const names = new Map(plan.map((device) => [device.id, device.name]))
  for (const device of plan) {
    const origin = device.origin === undefined ? undefined : names.get(device.origin)
    const made = writeImage(device.name, origin, device.name === "base" ? undefined : path.join(src, "vfs", "dir", device.name))
    if (made.id !== device.id) throw new Error(`device ${device.name} got id ${made.id}, not ${device.id}`)
  }
  writeDockerMetadata(home, plan, deviceSize, filesystem)
  fs.closeSync(data)

  const lines = [`<superblock uuid="" time="0" transaction="${devices.size}" flags="0" version="2" data_block_size="128" nr_data_blocks="${Math.max(nextDataBlock, 1)}">`]
  for (const device of devices.values()) {
    lines.push(`  <device dev_id="${device.id}" mapped_blocks="${device.blocks.size}" transaction="0" creation_time="0" snap_time="0">`)
    for (const [virtual, physical] of [...device.blocks].sort((a, b) => a[0] - b[0])) {
      lines.push(`    <single_mapping origin_block="${virtual}" data_block="${physical}" time="0"/>`)
    }
    lines.push("  </device>")
  }
  lines.push("</superblock>")
  const xml = path.join(work, "metadata.xml")
  fs.writeFileSync(xml, lines.join("\n") + "\n")
  const metadataFile = path.join(pool, "metadata")
  fs.writeFileSync(metadataFile, "")
  fs.truncateSync(metadataFile, 32 * 1024 * 1024)
  run("thin_restore", ["-i", xml, "-o", metadataFile])
  fs.rmSync(work, { recursive: true, force: true })
  return { devices: devices.size, dataBlocks: nextDataBlock }
}

if (import.meta.main) {
  const [src, dst] = process.argv.slice(2)
  if (src === undefined || dst === undefined) {
    process.stderr.write("usage: vfs-to-devicemapper.ts SRC_ROOT DST_ROOT [--device-size 64MiB] [--fs ext4|xfs]\n")
    process.exit(2)
  }
  const sizeArg = process.argv.indexOf("--device-size")
  const mib = sizeArg > 0 ? Number(process.argv[sizeArg + 1]?.replace(/MiB$/i, "")) : 64
  const fsArg = process.argv.indexOf("--fs")
  const filesystem = fsArg > 0 ? process.argv[fsArg + 1] : "ext4"
  if (filesystem !== "ext4" && filesystem !== "xfs") {
    process.stderr.write(`--fs ${filesystem}: expected ext4 or xfs\n`)
    process.exit(2)
  }
  const started = performance.now()
  const result = vfsToDevicemapper(path.resolve(src), path.resolve(dst), mib * 1024 * 1024, filesystem)
  process.stderr.write(`${result.devices} thin devices, ${result.dataBlocks} data blocks of 64 KiB, ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}
