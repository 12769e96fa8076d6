/**
 * Ctrl-C at the very start of a run: Bun and Deno drop a SIGINT or SIGTERM
 * that arrives before any listener exists (while modules load), so such a
 * run would go on to the end. Imported first by `main.ts`, this module
 * records the signal; `replayEarlySignal` sends it again once the runtime's
 * own listeners are in place, and the run is interrupted as any other.
 *
 * @module
 */
import process from "node:process"

let early: "SIGINT" | "SIGTERM" | undefined
const onSigint = () => (early ??= "SIGINT")
const onSigterm = () => (early ??= "SIGTERM")
process.on("SIGINT", onSigint)
process.on("SIGTERM", onSigterm)

/** Stops recording, and raises the recorded signal again (call after the runtime listens). */
export const replayEarlySignal = (): void => {
  process.off("SIGINT", onSigint)
  process.off("SIGTERM", onSigterm)
  if (early !== undefined) process.kill(process.pid, early)
}
