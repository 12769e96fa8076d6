/**
 * Writing every byte of a buffer to a file descriptor: `write(2)` may write
 * less than asked, so it is called until all is written.
 *
 * @module
 */
import * as fs from "node:fs"

/** Writes all of `bytes` to `fd`, at its current offset. */
export const writeAll = (fd: number, bytes: Uint8Array): void => {
  for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at)
}

/** Writes all of `bytes` to `fd` at `position` (`pwrite(2)`: the descriptor's offset does not move). */
export const writeAllAt = (fd: number, bytes: Uint8Array, position: number): void => {
  for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at, position + at)
}

/**
 * Writes a whole new file at `file` (opened write-only, created with `mode`,
 * and with `flag`: `O_EXCL` for a file that must be new, `O_TRUNC` to
 * replace one), removing it if the write fails: no half-written file stays.
 */
export const writeWholeFile = (file: string, bytes: Uint8Array, mode: number, flag: number): void => {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | flag, mode)
  try {
    writeAll(fd, bytes)
  } catch (error) {
    fs.closeSync(fd)
    fs.rmSync(file, { force: true })
    throw error
  }
  fs.closeSync(fd)
}
