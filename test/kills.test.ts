/**
 * SIGKILL at points spread over a whole run of each command that writes,
 * each run resuming what the killed one left (a run that finishes before its
 * point puts the graph back as it was, and the points go on): the last run
 * ends with exactly the files of an uninterrupted run, and nothing temporary
 * is left. 26 kill
 * points per command (checksums, migrate with containers and tags): 52 in
 * all, beside the fallback's own kill test.
 */
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { isRoot, makeGraph, runCli, runKilledAfter, tempDir } from "./support/cli.ts"

const KILL_POINTS = 26
const SKIP = isRoot ? false : "needs root (the generated graphs' owners)"
if (SKIP !== false) console.warn(`\n*** kill tests NOT RUN: ${SKIP} ***\n`)

/** Every file a run may write (store, markers, configs, helper files), with mode and content; and every temporary name. */
const outputs = (root: string) => {
  const files = new Map<string, string>()
  const temporaries: Array<string> = []
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir)) {
      const full = path.join(dir, name)
      const key = rel === "" ? name : `${rel}/${name}`
      if (name.startsWith(".tmp-") || name.endsWith(".tmp") || key.startsWith("image/overlay/layerdb/tmp/") || key.startsWith("image/vfs/layerdb/tmp/")) {
        temporaries.push(key)
      }
      if (name === ".cas-migrator.lock" || name === ".cas-migrator-journal") continue // the journal may repeat what killed runs began
      const stat = fs.lstatSync(full)
      if (key.startsWith("vfs") || key.startsWith("overlay")) continue // layer data: read only
      if (stat.isDirectory()) walk(full, key)
      else if (stat.isFile()) {
        files.set(key, `${(stat.mode & 0o7777).toString(8)} ${createHash("sha256").update(fs.readFileSync(full)).digest("hex")}`)
      }
    }
  }
  walk(root, "")
  return { files, temporaries }
}

/**
 * A graph with big and small files, a container and tags. (Regenerated layers
 * carry the PID of their run in PAX header names, so their kill test compares
 * by structure: `test/fallback.test.ts`.)
 */
const sample = (root: string, driver: string) => {
  const { layers } = makeGraph(root, driver, ["--size", "24MiB", "--layers", "8", "--big-files", "2", "--big-size", "4MiB"])
  const top = layers[layers.length - 1]!.id
  const container = createHash("sha256").update(`kills ${driver}`).digest("hex")
  fs.mkdirSync(path.join(root, "containers", container), { recursive: true })
  fs.writeFileSync(path.join(root, "containers", container, "config.json"), JSON.stringify({ ID: container, Image: top, State: {} }))
}

const durationOf = (args: ReadonlyArray<string>) => {
  const started = performance.now()
  const result = runCli(args)
  return { ms: performance.now() - started, result }
}

for (const [command, driver] of [["checksums", "overlay"], ["migrate", "vfs"]] as const) {
  test(`${command}: SIGKILL at ${KILL_POINTS} points across the run, each run resuming, ends with an uninterrupted run's files and no temporaries`, { skip: SKIP }, async () => {
    const base = tempDir(`kills-${command}`)
    const pristine = path.join(base, "pristine", "docker")
    sample(pristine, driver)
    const copyOf = (to: string) => {
      fs.rmSync(to, { recursive: true, force: true })
      fs.cpSync(pristine, to, { recursive: true, verbatimSymlinks: true })
      return to
    }
    const reference = copyOf(path.join(base, "reference", "docker"))
    const victim = copyOf(path.join(base, "victim", "docker"))
    const clean = durationOf([command, "--graph", reference])
    assert.ok(clean.result.code === 0, clean.result.stderr)

    // Each point spread over a whole run's duration (start-up included), with jitter so points fall
    // between steps. A resumed run is shorter than a clean one (what the killed runs finished is skipped),
    // so a late point may find the run done: the points left start again on an untouched graph, and a
    // whole run that finished first tells how long a whole run takes now (the first one was colder).
    let span = clean.ms
    let killed = 0
    let finished = 0
    let untouched = true
    while (killed < KILL_POINTS && finished < KILL_POINTS) {
      const delay = Math.floor((span * (killed + Math.random())) / KILL_POINTS)
      const started = performance.now()
      if (await runKilledAfter([command, "--graph", victim], delay)) {
        killed++
        untouched = false
        continue
      }
      finished++
      if (untouched) span = Math.min(span, performance.now() - started)
      copyOf(victim)
      untouched = true
    }
    assert.equal(killed, KILL_POINTS, `only ${killed} of ${KILL_POINTS} runs were killed before they finished (${finished} finished first)`)
    const last = runCli([command, "--graph", victim])
    assert.equal(last.code, 0, last.stderr)
    const got = outputs(victim)
    const want = outputs(reference)
    assert.deepEqual(got.temporaries, [], "temporary files left behind")
    const differ = [...new Set([...got.files.keys(), ...want.files.keys()])].filter((key) => got.files.get(key) !== want.files.get(key))
    assert.deepEqual(differ, [])
  })
}
