/**
 * Writing store files crash-safely: every file goes to a temporary name in
 * its directory and is renamed into place, directories are created with the
 * mode Docker gave them (the umask applies, as it did for Docker).
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** `os.MkdirAll(dir, mode)`: creates what is missing, each new directory with `mode`. */
export const makeDirectories = async (dir: string, mode: number): Promise<void> => {
  await fs.mkdir(dir, { recursive: true, mode })
}

/** Temporary files start with this; a re-run removes any it finds (they belong to a killed run). */
export const TEMPORARY_PREFIX = ".tmp-"

/** Writes `data` to `target` through a temporary file in the same directory and a rename. */
export const writeFileAtomic = async (target: string, data: string | Uint8Array, mode: number): Promise<void> => {
  const temporary = path.join(path.dirname(target), `${TEMPORARY_PREFIX}${path.basename(target)}-${randomBytes(6).toString("hex")}`)
  const file = await fs.open(temporary, "w", mode)
  try {
    await file.writeFile(data)
    await file.sync()
  } finally {
    await file.close()
  }
  try {
    await fs.rename(temporary, target)
  } catch (error) {
    await fs.rm(temporary, { force: true })
    throw error
  }
}

/** Copies `source` to `target` through a temporary file in the target's directory, synced, and a rename. */
export const copyFileAtomic = async (source: string, target: string, mode: number): Promise<void> => {
  const temporary = path.join(path.dirname(target), `${TEMPORARY_PREFIX}${path.basename(target)}-${randomBytes(6).toString("hex")}`)
  try {
    await fs.copyFile(source, temporary, fs.constants.COPYFILE_EXCL)
    await fs.chmod(temporary, mode)
    const file = await fs.open(temporary, "r+")
    try {
      await file.sync()
    } finally {
      await file.close()
    }
    await fs.rename(temporary, target)
  } catch (error) {
    await fs.rm(temporary, { force: true })
    throw error
  }
}

/** `writeFileAtomic` unless `target` already holds exactly `data` (so a re-run leaves it untouched). */
export const writeFileIfChanged = async (target: string, data: string | Uint8Array, mode: number): Promise<void> => {
  const wanted = typeof data === "string" ? new TextEncoder().encode(data) : data
  const current = await fs.readFile(target).catch(() => undefined)
  if (current !== undefined && Buffer.compare(current, wanted) === 0) return
  await writeFileAtomic(target, wanted, mode)
}

/** Whether anything is at `target` (`lstat`). */
export const exists = (target: string): Promise<boolean> => fs.lstat(target).then(() => true, () => false)
