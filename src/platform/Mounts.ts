/**
 * The mount table, and unmounting: what the plugins that mount layers, the
 * sweep of a killed run's leftovers and the tests' clean-up all need.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import { runCommand } from "./RunCommand.ts"

/** Mount points, decoded from /proc/self/mountinfo (whose paths escape space, tab, newline and backslash as \ooo). */
export const mountPoints = (): Array<string> => {
  let info = ""
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8")
  } catch { /* no /proc: nothing known to be mounted */ }
  return info.split("\n").flatMap((line) => {
    const field = line.split(" ")[4]
    return field === undefined ? [] : [field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))]
  })
}

/** The mount points at `dir` or below it, in the order they were mounted. */
export const mountsUnder = (dir: string): Array<string> =>
  mountPoints().filter((mounted) => mounted === dir || mounted.startsWith(`${dir}/`))

/** Unmounts `dir`, lazily if it is busy; rejects only if both fail. */
export const unmount = (dir: string): Promise<void> =>
  runCommand("umount", [dir]).catch(() => runCommand("umount", ["-l", dir])).then(() => undefined)
