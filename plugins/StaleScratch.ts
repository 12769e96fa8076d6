/**
 * What a killed run (SIGKILL, a crash, power loss) left in `<root>/tmp`: the
 * directories the plugins mount layers on and build device images in are
 * named `cas-migrator-<kind>-<pid>-...`, so a later run can tell those of a
 * process that is gone, unmount them (a loop-mounted image's loop device goes
 * with its mount) and remove them. A directory of a live process is left
 * alone.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import { processAlive } from "../src/platform/Processes.ts"
import { runCommand } from "../src/platform/RunCommand.ts"

const SCRATCH_NAME = /^cas-migrator-[a-z-]+?-(\d+)-/

/** The name of a scratch directory of this process, for `fs.mkdtemp`. */
export const scratchPrefix = (scratch: string, kind: string, label: string) =>
  path.join(scratch, `cas-migrator-${kind}-${process.pid}-${label}-`)

/** Mount points, decoded from /proc/self/mountinfo (whose paths escape space, tab, newline and backslash). */
export const mountPoints = async (): Promise<Array<string>> => {
  const info = await fs.readFile("/proc/self/mountinfo", "utf8").catch(() => "")
  return info.split("\n").flatMap((line) => {
    const field = line.split(" ")[4]
    return field === undefined ? [] : [field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))]
  })
}

/** Unmounts and removes the scratch directories in `scratch` whose process is gone; returns their names. */
export const sweepStaleScratch = async (scratch: string): Promise<Array<string>> => {
  const names = await fs.readdir(scratch).catch(() => [] as Array<string>)
  const swept: Array<string> = []
  for (const name of names) {
    const pid = SCRATCH_NAME.exec(name)?.[1]
    if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue
    const dir = path.join(scratch, name)
    // Innermost first; a busy one is detached lazily.
    for (const mounted of (await mountPoints()).filter((m) => m === dir || m.startsWith(`${dir}/`)).reverse()) {
      await runCommand("umount", [mounted]).catch(() => runCommand("umount", ["-l", mounted]))
    }
    if ((await mountPoints()).some((m) => m === dir || m.startsWith(`${dir}/`))) continue // never delete through a mount
    await fs.rm(dir, { recursive: true, force: true })
    swept.push(name)
  }
  return swept
}
