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
import { mountsUnder, unmount } from "../src/platform/Mounts.ts"
import { processAlive } from "../src/platform/Processes.ts"

const SCRATCH_NAME = /^cas-migrator-[a-z-]+?-(\d+)-/

/** The name of a scratch directory of this process, for `fs.mkdtemp`. */
export const scratchPrefix = (scratch: string, kind: string, label: string) =>
  path.join(scratch, `cas-migrator-${kind}-${process.pid}-${label}-`)

/** Unmounts and removes the scratch directories in `scratch` whose process is gone; returns their names. */
export const sweepStaleScratch = async (scratch: string): Promise<Array<string>> => {
  const names = await fs.readdir(scratch).catch(() => [] as Array<string>)
  const swept: Array<string> = []
  for (const name of names) {
    const pid = SCRATCH_NAME.exec(name)?.[1]
    if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue
    const dir = path.join(scratch, name)
    // Innermost first; a busy one is detached lazily.
    for (const mounted of mountsUnder(dir).reverse()) await unmount(mounted).catch(() => undefined)
    if (mountsUnder(dir).length > 0) continue // never delete through a mount
    await fs.rm(dir, { recursive: true, force: true })
    swept.push(name)
  }
  return swept
}
