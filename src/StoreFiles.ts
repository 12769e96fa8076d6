/**
 * Writing store files crash-safely: every file goes to a temporary name in
 * its directory and is renamed into place, directories are created with the
 * mode Docker gave them (the umask applies, as it did for Docker).
 *
 * @module
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** `os.MkdirAll(dir, mode)`: creates what is missing, each new directory with `mode`. */
export const makeDirectories = async (dir: string, mode: number): Promise<void> => {
  await fs.mkdir(dir, { recursive: true, mode })
}

/** Writes `data` to `target` through a temporary file in the same directory and a rename. */
export const writeFileAtomic = async (target: string, data: string | Uint8Array, mode: number): Promise<void> => {
  const temporary = path.join(path.dirname(target), `.tmp-${path.basename(target)}-${randomBytes(6).toString("hex")}`)
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

/** Whether anything is at `target` (`lstat`). */
export const exists = (target: string): Promise<boolean> => fs.lstat(target).then(() => true, () => false)
