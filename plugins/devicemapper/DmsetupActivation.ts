/**
 * Way (a), on hosts with device-mapper: the layer's thin device is activated
 * read-only with `dmsetup` on the pool. That is Docker's own pool when it is
 * active (a live daemon, or `dm.thinpooldev`); otherwise a read-only pool of
 * our own over the pool's files, each attached through a read-only loop
 * device, with the `read_only` feature so the kernel writes no metadata.
 * Every device made here is removed when released, the pool last.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import { runCommand } from "../../src/platform/RunCommand.ts"
import { processAlive } from "../../src/platform/Processes.ts"
import { dockerPoolName } from "./DockerDevices.ts"
import type { ThinDeviceAccess } from "./ThinDeviceAccess.ts"
import { readThinPoolGeometry } from "./ThinPoolSuperblock.ts"

/** Whether this kernel has device-mapper and `dmsetup` can talk to it. */
export const deviceMapperAvailable = async (): Promise<boolean> => {
  const control = await fs.access("/dev/mapper/control").then(() => true, () => false)
  return control && (await runCommand("dmsetup", ["version"]).then((out) => out.includes("Driver version"), () => false))
}

export interface PoolSource {
  /** The driver's home, `<root>/devicemapper`, which Docker's pool name derives from. */
  readonly home: string
  /** `dm.thinpooldev`: an existing pool to use. */
  readonly thinPoolDevice: string | undefined
  /** The pool's metadata and data: loopback files or block devices. */
  readonly metadata: string
  readonly data: string
}

const isThinPool = (name: string) =>
  runCommand("dmsetup", ["status", name]).then((status) => status.split(" ")[2] === "thin-pool", () => false)

const removeDevice = (name: string) => runCommand("dmsetup", ["remove", "--retry", name])

/** `major:minor` of a dm device: tables name the pool by number, so its node need not exist. */
const deviceNumber = async (name: string) =>
  (await runCommand("dmsetup", ["info", "-c", "--noheadings", "-o", "major,minor", "--separator", ":", name])).trim()

/**
 * `/dev/mapper/<name>`, checked by dmsetup itself (`mknodes`): where no udev manages the nodes (a
 * container, an initramfs) it may be missing, or left from an earlier device of that name.
 */
const deviceNode = async (name: string) => {
  await runCommand("dmsetup", ["mknodes", name])
  return `/dev/mapper/${name}`
}

/** Removes our device and, where no udev did, its node. */
const removeOwnDevice = async (name: string) => {
  await removeDevice(name)
  await fs.rm(`/dev/mapper/${name}`, { force: true })
}

export const dmsetupActivation = (source: PoolSource): ThinDeviceAccess => {
  const prefix = `cas-migrator-${process.pid}`
  const loops: Array<string> = []
  let ownPool: string | undefined

  /** A read-only block device for `file` (a loop device unless it is one already). */
  const blockDevice = async (file: string) => {
    if ((await fs.stat(file)).isBlockDevice()) return file
    const loop = (await runCommand("losetup", ["--find", "--show", "--read-only", file])).trim()
    loops.push(loop)
    return loop
  }

  const activatePool = async (): Promise<string> => {
    if (source.thinPoolDevice !== undefined) {
      const name = source.thinPoolDevice.replace(/^\/dev\/mapper\//, "")
      if (!(await isThinPool(name))) throw new Error(`dm.thinpooldev: ${name} is not an active thin pool`)
      return name
    }
    const docker = await dockerPoolName(source.home)
    if (await isThinPool(docker)) return docker
    const { blockSectors, dataBlocks } = await readThinPoolGeometry(source.metadata)
    const metadata = await blockDevice(source.metadata)
    const data = await blockDevice(source.data)
    const name = `${prefix}-pool`
    const table = `0 ${blockSectors * dataBlocks} thin-pool ${metadata} ${data} ${blockSectors} 32768 1 read_only`
    ownPool = name // before: an interrupted create may still have made it
    // A thin-pool table cannot itself be read-only; its read_only feature keeps the kernel from writing.
    await runCommand("dmsetup", ["create", name, "--table", table])
    return name
  }
  let pool: Promise<string> | undefined

  /**
   * Devices of a killed run (`cas-migrator-<pid>-...`, thin devices before their pool) and the
   * read-only loops it attached to the pool's files, which nothing holds any more. Docker's own loops
   * are writable and held by its pool.
   */
  const sweepStale = async (): Promise<ReadonlyArray<string>> => {
    const swept: Array<string> = []
    const listed = await runCommand("dmsetup", ["ls"]).catch(() => "")
    const stale: Array<string> = []
    for (const line of listed.split("\n")) {
      const name = line.split(/\s+/)[0] ?? ""
      const pid = /^cas-migrator-(\d+)-/.exec(name)?.[1]
      if (pid !== undefined && Number(pid) !== process.pid && !processAlive(Number(pid))) stale.push(name)
    }
    for (const name of [...stale.filter((n) => !n.endsWith("-pool")), ...stale.filter((n) => n.endsWith("-pool"))]) {
      if (await removeOwnDevice(name).then(() => true, () => false)) swept.push(name)
    }
    const files = new Set([source.metadata, source.data].map((file) => path.resolve(file)))
    const loopList = await runCommand("losetup", ["--list", "--noheadings", "--raw", "--output", "NAME,RO,BACK-FILE"]).catch(() => "")
    for (const line of loopList.split("\n")) {
      const [loop, readOnly, ...backFile] = line.split(" ")
      // --raw escapes blanks and other bytes as \xHH.
      const file = backFile.join(" ").replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      if (loop === undefined || readOnly !== "1" || !files.has(file)) continue
      const holders = await fs.readdir(`/sys/block/${path.basename(loop)}/holders`).catch(() => ["?"])
      if (holders.length === 0 && (await runCommand("losetup", ["--detach", loop]).then(() => true, () => false))) swept.push(loop)
    }
    return swept
  }

  return {
    name: "dmsetup",
    sweepStale,
    open: async (device) => {
      const poolDevice = await (pool ??= activatePool().then(deviceNumber))
      const name = `${prefix}-${device.deviceId}`
      const table = `0 ${device.size / 512} thin ${poolDevice} ${device.deviceId}`
      const release = () => removeOwnDevice(name)
      try {
        await runCommand("dmsetup", ["create", "--readonly", name, "--table", table])
        return { path: await deviceNode(name), isFile: false, release }
      } catch (error) {
        await release().catch(() => undefined) // a create that failed late may have left it
        throw error
      }
    },
    close: async () => {
      await pool?.catch(() => undefined)
      if (ownPool !== undefined) await removeOwnDevice(ownPool).catch(() => undefined)
      for (const loop of loops.splice(0).reverse()) await runCommand("losetup", ["--detach", loop]).catch(() => undefined)
    },
  }
}
