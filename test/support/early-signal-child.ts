/**
 * A program that is slow to start, as the CLI is while its modules load:
 * EarlySignals first, then "ready" on stdout, 300 ms of busy loading, then
 * the "runtime" listener and the replay. It prints what it ends with.
 */
import { replayEarlySignal } from "../../src/cli/EarlySignals.ts"
import process from "node:process"

process.stdout.write("ready\n")
const started = Date.now()
while (Date.now() - started < 300) { /* loading */ }
process.on("SIGINT", () => {
  process.stdout.write("interrupted\n")
  process.exit(130)
})
replayEarlySignal()
setTimeout(() => process.stdout.write("finished\n"), 300)
