/**
 * What Docker 1.9's devicemapper driver recorded about its thin devices:
 * `devicemapper/metadata/<id>` per layer (the device id in the pool and the
 * device's size), and the name it gave its pool.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { errorMessage } from "../../src/platform/ErrorCode.ts"
import { readSmallText, SMALL_FILE_LIMIT } from "../../src/platform/RegularFile.ts"

/** A layer's thin device. */
export interface ThinDevice {
  /** The device id in the pool: a 24-bit number. */
  readonly deviceId: number
  /** Bytes. */
  readonly size: number
}

/** The thin device of layer `id`, from `metadata/<id>`; undefined when there is none or it was deleted. */
export const readThinDevice = async (metadataDir: string, id: string): Promise<ThinDevice | undefined> => {
  const file = path.join(metadataDir, id)
  const text = await readSmallText(file, SMALL_FILE_LIMIT.value).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined
    throw error
  })
  if (text === undefined) return undefined
  let info: { device_id?: unknown; size?: unknown; deleted?: unknown }
  try {
    info = JSON.parse(text) as typeof info
  } catch (error) {
    throw new Error(`${file}: not JSON (${errorMessage(error)})`)
  }
  const { device_id: deviceId, size, deleted } = info
  if (typeof deviceId !== "number" || !Number.isInteger(deviceId) || deviceId < 0 || deviceId >= 2 ** 24) {
    throw new Error(`${file}: device_id is not a thin device id (${JSON.stringify(deviceId)})`)
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) {
    throw new Error(`${file}: size is not a whole number of sectors (${JSON.stringify(size)})`)
  }
  return deleted === true ? undefined : { deviceId, size }
}

/**
 * Docker's pool name, `docker-<major>:<minor>-<inode>-pool`, from the driver's
 * home directory (`<root>/devicemapper`), with Go's major/minor split of st_dev.
 */
export const dockerPoolName = async (home: string): Promise<string> => {
  const st = await fs.stat(home, { bigint: true })
  const major = (st.dev >> 8n) & 0xfffn
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n)
  return `docker-${major}:${minor}-${st.ino}-pool`
}
