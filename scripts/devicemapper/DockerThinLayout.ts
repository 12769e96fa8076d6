/**
 * What Docker 1.9's devicemapper driver kept beside its thin pool, for a vfs
 * graph being laid out as one: the order its thin devices are made in (the
 * base device, then every layer after the one it was made from), Docker's
 * JSON under `devicemapper/metadata/`, and the graph's own files. Shared by
 * the two ways of building a pool:
 * `vfs-to-devicemapper.ts` (thin_restore, no device-mapper) and
 * `thin-pool-in-guest.ts` (the kernel's thin-pool target, in a guest).
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** One thin device: its id, the device it is a snapshot of (none for the base) and its layer ("base" for the base). */
export interface ThinDevice {
  readonly id: number
  readonly origin: number | undefined
  readonly name: string
}

const parentOf = (src: string, id: string): string | undefined => {
  const dir = path.join(src, "graph", id)
  try {
    const file = fs.readFileSync(path.join(dir, "parent"), "utf8")
    if (file !== "") return file
  } catch { /* no parent file */ }
  try {
    const json = JSON.parse(fs.readFileSync(path.join(dir, "json"), "utf8")) as { parent?: string; parent_id?: string }
    if (json.parent) return json.parent
    if (json.parent_id?.includes(":")) return json.parent_id.slice(json.parent_id.indexOf(":") + 1)
  } catch { /* not an image */ }
  return undefined
}

/** The image a container was made from (its config.json's `Image`). */
const imageOfContainer = (src: string, id: string): string | undefined => {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(src, "containers", id, "config.json"), "utf8")) as { Image?: unknown }
    return typeof config.Image === "string" ? config.Image : undefined
  } catch {
    return undefined
  }
}

/** The layer a layer was made from, as Docker did: an image's parent; a container's `-init` layer; `-init`'s image. */
const originOf = (src: string, layerDir: string, id: string): string | undefined => {
  const origin = id.endsWith("-init")
    ? imageOfContainer(src, id.slice(0, -"-init".length))
    : fs.existsSync(path.join(layerDir, `${id}-init`))
    ? `${id}-init`
    : parentOf(src, id)
  return origin !== undefined && fs.existsSync(path.join(layerDir, origin)) ? origin : undefined
}

/** The devices for the layers in `src/vfs/dir`, ids from 1 in creation order. */
export const thinDevicePlan = (src: string): Array<ThinDevice> => {
  const layerDir = path.join(src, "vfs", "dir")
  const plan: Array<ThinDevice> = [{ id: 1, origin: undefined, name: "base" }]
  const made = new Map<string, number>([["base", 1]])
  const make = (id: string): number => {
    const existing = made.get(id)
    if (existing !== undefined) return existing
    const origin = originOf(src, layerDir, id)
    const from = origin === undefined ? 1 : make(origin)
    const device = { id: plan.length + 1, origin: from, name: id }
    plan.push(device)
    made.set(id, device.id)
    return device.id
  }
  for (const id of fs.readdirSync(layerDir).sort()) make(id)
  return plan
}

/** Docker's JSON for the pool's devices, as its deviceset wrote it once every device was made. */
export const writeDockerMetadata = (home: string, plan: ReadonlyArray<ThinDevice>, deviceSize: number, filesystem: "ext4" | "xfs" = "ext4") => {
  fs.mkdirSync(path.join(home, "metadata"), { recursive: true })
  for (const device of plan) {
    fs.writeFileSync(
      path.join(home, "metadata", device.name),
      JSON.stringify({ device_id: device.id, size: deviceSize, transaction_id: device.id, initialized: true, deleted: false }),
      { mode: 0o600 },
    )
  }
  fs.writeFileSync(path.join(home, "metadata", "deviceset-metadata"), JSON.stringify({ next_device_id: plan.length + 1, BaseDeviceUUID: "", BaseDeviceFilesystem: filesystem }))
  fs.writeFileSync(path.join(home, "metadata", "transaction-metadata"), JSON.stringify({ open_transaction_id: plan.length, device_hash: "", device_id: 0 }))
}

/** The graph's images, containers and tags, copied as they are (the tags file renamed for the driver). */
export const copyGraphFiles = (src: string, dst: string) => {
  fs.mkdirSync(dst, { recursive: true })
  for (const dir of ["graph", "containers"]) {
    if (fs.existsSync(path.join(src, dir))) execFileSync("cp", ["-a", path.join(src, dir), path.join(dst, dir)])
  }
  if (fs.existsSync(path.join(src, "repositories-vfs"))) fs.copyFileSync(path.join(src, "repositories-vfs"), path.join(dst, "repositories-devicemapper"))
}
