/**
 * Running a system tool (`zfs`, `mount`, `umount`) and getting its output,
 * or an error that says which command failed and what it printed.
 *
 * @module
 */
import { execFile } from "node:child_process"

/** A tool exited non-zero or could not start. */
export class CommandError extends Error {
  override readonly name = "CommandError"
}

/** Runs `command args...`; resolves with its stdout. */
export const runCommand = (command: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(command, [...args], { encoding: "utf8", maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error === null) return resolve(stdout)
      const detail = (stderr || error.message).trim().split("\n").slice(-3).join(" ")
      reject(new CommandError(`${command} ${args.join(" ")}: ${detail}`))
    })
  })
