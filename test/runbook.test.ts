/**
 * The Ansible runbook (runbook/upgrade.yml) over four local hosts
 * (`ansible_connection=local`, each its own Docker root: vfs and overlay
 * goldens) in batches of 1, 2 and 1. The second host carries stale helper files
 * (a `.migration-diffid` an earlier run left, wrong for the layer's data):
 * `migrate` trusts them as Docker did, `verify` then finds the layer's tar
 * does not hash to its diffID, and the host must be rolled back to exactly
 * its state before and its old daemon started again. The first batch ends
 * migrated and verified, the failing batch's other host finishes its own
 * runbook, the last batch is never touched, and every report that was
 * written is on the controller with the exit code its step had.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { changedPaths, extractGolden, isRoot, repo, runCli, snapshot, tempDir } from "./support/cli.ts"

const MINUTES = 60_000
const haveAnsible = spawnSync("sh", ["-c", "command -v ansible-playbook"]).status === 0
const SKIP = !isRoot
  ? "needs root: the goldens hold device nodes, uid 3000000 files and trusted.* xattrs"
  : !haveAnsible
  ? "needs Debian's ansible (apt-get install ansible; scripts/install-test-deps.sh installs it)"
  : false
if (SKIP !== false) console.warn(`\n*** runbook (Ansible) tests NOT RUN: ${SKIP} ***\n`)

interface Expected {
  readonly images: Record<string, { readonly migrated: boolean; readonly error?: string }>
  readonly layers: Record<string, { readonly path: string; readonly diff_id: string; readonly size: number }>
  readonly containers: Record<string, { readonly mount: unknown; readonly config_v2_image: string | null; readonly config_v2_preexisting?: boolean }>
}
const expectedOf = (driver: string) =>
  JSON.parse(fs.readFileSync(path.join(repo, "test/goldens", driver, "expected.json"), "utf8")) as Expected

/**
 * What Docker's own migration of the golden failed on, as an operator lists
 * it for the playbook: the images it could not migrate (and the missing
 * parents they name), and what verify finds in the store it made (a layer
 * whose pre-existing helper files lie, containers left without a mount or
 * with an older config.v2.json).
 */
const goldenFailures = (driver: string) => {
  const expected = expectedOf(driver)
  const failed = Object.entries(expected.images).filter(([, image]) => !image.migrated)
  // An image whose parent is missing fails with the parent, which migrate lists as a failed image too.
  const missingParents = failed.flatMap(([, image]) => [...(image.error ?? "").matchAll(/graph\/([0-9a-f]{64})\/json: no such file/g)].map((m) => m[1]!))
  const images = [...new Set([...failed.map(([id]) => id), ...missingParents])]
  const lyingLayers = Object.values(expected.layers).filter((l) => l.path === "preexisting").map((l) => l.diff_id)
  const faultyContainers = Object.entries(expected.containers)
    .filter(([, c]) => c.config_v2_image !== null && (c.mount === null || c.config_v2_preexisting === true))
    .map(([id]) => id)
  return { images, verify: [...lyingLayers, ...faultyContainers] }
}

/**
 * The helper files an earlier, abandoned run left on a layer whose data has
 * changed since: a diffID the data no longer hashes to (migrate trusts
 * pre-existing helper files, as Docker did).
 */
const plantStaleHelperFiles = (driver: string, root: string) => {
  const expected = expectedOf(driver)
  const [id, layer] = Object.entries(expected.layers).find(([id, l]) => l.path === "tarsplit" && expected.images[id]?.migrated === true)!
  const layerDir = path.join(root, "graph", id)
  const stale = `sha256:${createHash("sha256").update(`an earlier version of ${id}`).digest("hex")}`
  fs.writeFileSync(path.join(layerDir, ".migration-diffid"), stale)
  fs.writeFileSync(path.join(layerDir, ".migration-size"), String(layer.size))
  fs.linkSync(path.join(layerDir, "tar-data.json.gz"), path.join(layerDir, ".migration-tardata"))
  return stale
}

/** dist/cas-migrator as `bun build.ts` makes it, built into a fresh directory. */
const buildBinary = () => {
  const outdir = tempDir("runbook-dist")
  const bun = process.versions.bun !== undefined ? process.execPath : path.join(repo, "node_modules/.bin/bun")
  const built = spawnSync(bun, [path.join(repo, "build.ts"), "--only", "glibc", "--outdir", outdir], { cwd: repo, encoding: "utf8" })
  assert.equal(built.status, 0, `bun build.ts: ${built.stderr}`)
  return path.join(outdir, "cas-migrator")
}

interface Host {
  readonly name: string
  readonly driver: string
  readonly root: string
  readonly dir: string
  readonly failures: { readonly images: Array<string>; readonly verify: Array<string> }
}

const report = (reports: string, host: Host, step: string) =>
  JSON.parse(fs.readFileSync(path.join(reports, host.name, `${step}.json`), "utf8")) as {
    readonly command: string
    readonly exitCode: number
    readonly problems?: ReadonlyArray<{ readonly item: string }>
    readonly removed?: ReadonlyArray<string>
  }
const events = (host: Host) => {
  const file = path.join(host.dir, "events")
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : []
}

test("the playbook migrates batch by batch, rolls the failing host back exactly, stops before the next batch, and collects every report", { skip: SKIP, timeout: 6 * MINUTES }, () => {
  const binary = buildBinary()
  const work = tempDir("runbook")
  // Batches (serial 1, then 2): [host1] [host2 host3] [host4]; host2 fails.
  const hosts: Array<Host> = ["vfs", "vfs", "overlay", "vfs"].map((driver, i) => {
    const root = extractGolden(driver)
    const dir = path.join(work, `host${i + 1}`)
    fs.mkdirSync(dir)
    return { name: `host${i + 1}`, driver, root, dir, failures: goldenFailures(driver) }
  })
  const [first, failing, sameBatch, last] = hosts as [Host, Host, Host, Host]
  const stale = plantStaleHelperFiles(failing.driver, failing.root)
  const failingBefore = snapshot(failing.root)
  const lastBefore = snapshot(last.root)

  const reports = path.join(work, "reports")
  const daemon = (host: Host, event: string) => `echo ${event} >> '${path.join(host.dir, "events")}'`
  const inventory = {
    docker_hosts: {
      vars: {
        ansible_connection: "local",
        ansible_python_interpreter: "/usr/bin/python3",
        cas_migrator_binary: binary,
        cas_migrator_reports: reports,
        // The goldens hold images that fail on purpose (Docker failed on them too): accept a 1 for those only.
        cas_migrator_ok_exit: { plan: [0, 1], checksums: [0], migrate: [0, 1], verify: [0, 1], rollback: [0] },
      },
      hosts: Object.fromEntries(hosts.map((host) => [host.name, {
        cas_migrator_root: host.root,
        cas_migrator_remote_dir: path.join(host.dir, "remote"),
        cas_migrator_known_failures: [...host.failures.images, ...host.failures.verify],
        cas_migrator_stop_old_daemon: daemon(host, "stop-old"),
        cas_migrator_start_new_daemon: daemon(host, "start-new"),
        cas_migrator_stop_new_daemon: daemon(host, "stop-new"),
        cas_migrator_start_old_daemon: daemon(host, "start-old"),
      }])),
    },
  }
  const inventoryFile = path.join(work, "inventory.yml")
  fs.writeFileSync(inventoryFile, JSON.stringify(inventory, null, 2)) // JSON is YAML

  const started = Date.now()
  const run = spawnSync(
    "ansible-playbook",
    ["-i", inventoryFile, path.join(repo, "runbook/upgrade.yml"), "-e", JSON.stringify({ cas_migrator_serial: [1, 2] }), "-e", "cas_migrator_become=false"],
    {
      cwd: work,
      encoding: "utf8",
      maxBuffer: 64 << 20,
      env: { ...process.env, ANSIBLE_LOCAL_TEMP: path.join(work, "ansible-local"), ANSIBLE_REMOTE_TEMP: path.join(work, "ansible-remote"), ANSIBLE_NOCOLOR: "1", ANSIBLE_RETRY_FILES_ENABLED: "0" },
    },
  )
  const output = `${run.stdout}\n${run.stderr}`
  console.log(`ansible-playbook over ${hosts.length} hosts: ${((Date.now() - started) / 1000).toFixed(1)} s, exit ${run.status}`)
  // 2: a host failed (Ansible's code); the message names the host and its step.
  assert.equal(run.status, 2, output)
  assert.match(output, new RegExp(`${failing.name} rolled back after verify: judge its exit code`), output)

  // The first batch, and the failing batch's other host (it finishes its own runbook): migrated, verified, new daemon started.
  for (const host of [first, sameBatch]) {
    assert.deepEqual(events(host), ["stop-old", "start-new"], host.name)
    assert.deepEqual(["plan", "checksums", "migrate", "verify"].map((step) => report(reports, host, step).exitCode), [1, 0, 1, 1], host.name)
    assert.equal(fs.existsSync(path.join(reports, host.name, "rollback.json")), false, `${host.name} was rolled back`)
    const verify = runCli(["verify", "--graph", host.root, "--json"])
    const problems = (JSON.parse(verify.stdout) as { problems: Array<{ item: string }> }).problems.map((p) => p.item)
    assert.ok(problems.length > 0 && problems.every((item) => host.failures.verify.includes(item)), `${host.name}: ${verify.stdout}`)
  }
  // The failing host: its reports up to the failure, then the rollback's; its root exactly as before; old daemon started again.
  assert.deepEqual(events(failing), ["stop-old", "start-old"])
  assert.deepEqual(["plan", "checksums", "migrate", "verify", "rollback"].map((step) => report(reports, failing, step).exitCode), [1, 0, 1, 1, 0])
  const unknown = report(reports, failing, "verify").problems!.map((p) => p.item).filter((item) => !failing.failures.verify.includes(item))
  assert.deepEqual([...new Set(unknown)], [stale], "verify on the failing host: beyond the golden's own faults")
  assert.ok(report(reports, failing, "rollback").removed!.includes(`image/${failing.driver}`))
  assert.deepEqual(changedPaths(failingBefore, snapshot(failing.root)), [])
  // The last batch: never started.
  assert.deepEqual(events(last), [])
  assert.equal(fs.existsSync(path.join(last.dir, "remote")), false)
  assert.equal(fs.existsSync(path.join(reports, last.name)), false)
  assert.deepEqual(changedPaths(lastBefore, snapshot(last.root)), [])
  // Every report on the controller is JSON naming its command; the logs stay on the host beside its copy.
  for (const host of [first, failing, sameBatch]) {
    const steps = fs.readdirSync(path.join(reports, host.name)).map((file) => file.replace(/\.json$/, "")).sort()
    assert.deepEqual(steps, ["checksums", "migrate", "plan", ...(host === failing ? ["rollback"] : []), "verify"], host.name)
    for (const step of steps) {
      assert.equal(report(reports, host, step).command, step)
      assert.ok(fs.existsSync(path.join(host.dir, "remote/reports", `${step}.log`)), `${host.name}: ${step}.log`)
    }
  }
})
