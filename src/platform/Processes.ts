/**
 * Whether a process still runs, by its PID: for a lock's holder, a daemon's
 * pid file, or the owner of what a killed run left behind.
 *
 * @module
 */
import { readFileSync } from "node:fs"
import process from "node:process"
import { errorCode } from "./ErrorCode.ts"

/** A process that exists and has not exited (a zombie is an exited process its parent has not reaped yet). */
export const processAlive = (pid: number): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (error) {
    if (errorCode(error) !== "EPERM") return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true // no /proc: trust kill(2)
  }
}
