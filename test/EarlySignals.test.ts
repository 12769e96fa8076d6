/**
 * Ctrl-C while the CLI's modules load: Bun and Deno drop a signal that comes
 * before any listener, so the run would finish; EarlySignals records it and
 * raises it again once the runtime listens.
 */
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { repo } from "./support/cli.ts"

const deno = (globalThis as { readonly Deno?: { execPath(): string } }).Deno

test("a SIGINT that comes while modules load interrupts the run once the runtime listens", async () => {
  const child = path.join(repo, "test/support/early-signal-child.ts")
  const [command, args] = deno !== undefined ? [deno.execPath(), ["run", "-A", child]] : [process.execPath, [child]]
  const started = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  const exited = new Promise<number | null>((resolve) => started.on("close", resolve))
  started.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString()
    if (out === "ready\n") started.kill("SIGINT")
  })
  const code = await exited
  assert.equal(out, "ready\ninterrupted\n")
  // Deno's child_process reports the signal it sent, not the child's own exit code.
  if (deno === undefined) assert.equal(code, 130)
})
