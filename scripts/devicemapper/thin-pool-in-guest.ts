/**
 * Docker's loop-lvm thin pool, built and read by a real kernel's thin-pool
 * target: this machine's kernel has no device-mapper, so a small guest runs
 * under qemu's software emulation (TCG) with Debian's kernel
 * (`guest/build-guest.sh`). Needs root (loop mounts), qemu-system-x86,
 * e2fsprogs and apt (to download the kernel package).
 *
 *   bun scripts/devicemapper/thin-pool-in-guest.ts build SRC_ROOT DST_ROOT [--device-size 64MiB]
 *     Boot 1: lays the vfs graph SRC_ROOT out as Docker 1.9's devicemapper
 *     driver did (guest/build-pool.sh) and writes the result, with Docker's
 *     JSON metadata and the graph's files, to DST_ROOT. The pool is cached
 *     (by the graph, the device size and the scripts) under --cache
 *     (default ~/.cache/cas-migrator/devicemapper-guest).
 *
 *   bun scripts/devicemapper/thin-pool-in-guest.ts read ROOT BINARY OUT_DIR
 *     Boot 2: runs the compiled cas-migrator BINARY in the guest on ROOT
 *     through `dmsetup` activation (guest/read-pool.sh): checksums,
 *     plugin-test on its own pool and on Docker's, migrate. ROOT is updated
 *     with what the runs wrote; their output and `dmsetup`/mount leftovers
 *     are put in OUT_DIR.
 *
 * @module
 */
import { createHash } from "node:crypto"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { copyGraphFiles, thinDevicePlan, writeDockerMetadata } from "./DockerThinLayout.ts"

const here = path.dirname(new URL(import.meta.url).pathname)
const guestScripts = path.join(here, "guest")
const run = (command: string, args: ReadonlyArray<string>) => execFileSync(command, args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 })

export const defaultCache = path.join(os.homedir(), ".cache", "cas-migrator", "devicemapper-guest")

/** The kernel and initramfs, built once per kernel package and guest scripts. */
export const buildGuest = (cache: string) => {
  const out = path.join(cache, "guest")
  execFileSync("sh", [path.join(guestScripts, "build-guest.sh"), out], { stdio: ["ignore", "inherit", "inherit"] })
  return { kernel: path.join(out, "vmlinuz"), initrd: path.join(out, "initrd.gz"), stamp: fs.readFileSync(path.join(out, "stamp"), "utf8").trim() }
}

/** Everything under `dir` that shapes a pool built from it (GNU tar's view: names, modes, owners, times, xattrs, contents). */
const treeDigest = (dir: string) =>
  run("sh", ["-c", 'tar --sort=name --numeric-owner --xattrs --format=posix --pax-option=delete=atime,delete=ctime -cf - -C "$1" . | sha256sum', "tree-digest", dir])
    .toString().slice(0, 64)

/** An ext4 image of `dir` (mke2fs -d keeps owners, modes, times, xattrs, hard links and holes). */
const ext4Image = (image: string, dir: string, spareBytes: number) => {
  const used = Number(run("du", ["-sb", dir]).toString().split("\t")[0])
  const blocks = Math.ceil((used * 2 + spareBytes) / 4096)
  fs.rmSync(image, { force: true })
  run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", "4096", "-d", dir, image, String(blocks)])
}

/** What a boot left: the task's exit status (undefined if it never finished) and the serial console. */
export interface GuestRun {
  readonly status: number | undefined
  readonly console: string
}

/** Boots the guest on the two disks, the input read-only; `console` echoes the serial console as it comes. */
const boot = (guest: ReturnType<typeof buildGuest>, task: "build" | "read", input: string, work: string, echo: boolean): GuestRun => {
  const qemu = spawnSync("qemu-system-x86_64", [
    "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
    "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", `console=ttyS0 quiet panic=-1 cas.task=${task}`,
    "-drive", `file=${input},format=raw,if=virtio,readonly=on`, "-drive", `file=${work},format=raw,if=virtio`,
  ], { stdio: ["ignore", echo ? "inherit" : "pipe", "pipe"], encoding: "utf8", timeout: 15 * 60 * 1000, maxBuffer: 64 << 20 })
  if (qemu.error !== undefined) throw new Error(`qemu-system-x86_64: ${qemu.error.message}`)
  const serial = `${qemu.stdout ?? ""}${qemu.stderr ?? ""}`
  const status = withMounted(work, (dir) => {
    const file = path.join(dir, "task.status")
    return fs.existsSync(file) ? Number(fs.readFileSync(file, "utf8").trim()) : undefined
  })
  return { status, console: serial }
}

const withMounted = <A>(image: string, use: (dir: string) => A): A => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cas-migrator-guest-disk-"))
  run("mount", ["-o", "loop", image, dir])
  try {
    return use(dir)
  } finally {
    run("umount", [dir])
    fs.rmdirSync(dir)
  }
}

const copyTree = (from: string, to: string) => run("cp", ["-a", "--sparse=always", from, to])

/** Boot 1 (or the cache): the vfs graph `src` as Docker's loop-lvm pool in `dst`. */
export const buildThinPoolInGuest = (src: string, dst: string, options: { deviceSize: number; cache?: string; echo?: boolean }) => {
  const cache = options.cache ?? defaultCache
  const guest = buildGuest(cache)
  const plan = thinDevicePlan(src)
  const key = createHash("sha256")
    .update(`${guest.stamp}\0${options.deviceSize}\0${JSON.stringify(plan)}\0${treeDigest(path.join(src, "vfs", "dir"))}`)
    .digest("hex").slice(0, 24)
  const pool = path.join(cache, "pools", key)
  let booted = false
  if (!fs.existsSync(pool)) {
    const work = fs.mkdtempSync(path.join(cache, ".pool-"))
    try {
      const input = path.join(work, "input")
      fs.mkdirSync(path.join(input, "graph"), { recursive: true })
      copyTree(path.join(src, "vfs"), path.join(input, "graph", "vfs"))
      fs.writeFileSync(path.join(input, "plan"), plan.map((d) => `${d.id} ${d.origin ?? "-"} ${d.name}\n`).join(""))
      fs.writeFileSync(path.join(input, "pool.env"), `DEVICE_SIZE=${options.deviceSize}\nDATA_SIZE=${100 * 2 ** 30}\nMETADATA_SIZE=${2 * 2 ** 30}\n`)
      ext4Image(path.join(work, "input.img"), input, 64 << 20)
      fs.writeFileSync(path.join(work, "work.img"), "")
      fs.truncateSync(path.join(work, "work.img"), 2 * 2 ** 30 + plan.length * options.deviceSize)
      run("mkfs.ext4", ["-q", "-F", path.join(work, "work.img")])
      const guestRun = boot(guest, "build", path.join(work, "input.img"), path.join(work, "work.img"), options.echo ?? false)
      if (guestRun.status !== 0) throw new Error(`the guest's build-pool.sh failed (status ${guestRun.status}):\n${guestRun.console.slice(-4000)}`)
      withMounted(path.join(work, "work.img"), (dir) => copyTree(path.join(dir, "docker", "devicemapper"), path.join(work, "devicemapper")))
      fs.mkdirSync(path.dirname(pool), { recursive: true })
      try {
        fs.renameSync(path.join(work, "devicemapper"), pool)
      } catch (error) {
        // Another run cached the same pool meanwhile: theirs is as good.
        if (!fs.existsSync(pool)) throw error
      }
      booted = true
    } finally {
      fs.rmSync(work, { recursive: true, force: true })
    }
  }
  copyGraphFiles(src, dst)
  copyTree(pool, path.join(dst, "devicemapper"))
  writeDockerMetadata(path.join(dst, "devicemapper"), plan, options.deviceSize)
  return { devices: plan.length, cached: !booted, pool }
}

/** The shared libraries `binary` loads, for the guest (whose initramfs has only its own tools'). */
const librariesOf = (binary: string) =>
  run("ldd", [binary]).toString().split("\n").flatMap((line) => /=> (\/\S+)/.exec(line)?.[1] ?? [])

/** Boot 2: the compiled binary reads `root` through dmsetup activation in the guest. */
export const readThinPoolInGuest = (root: string, binary: string, outDir: string, options: { cache?: string; echo?: boolean } = {}): GuestRun => {
  const cache = options.cache ?? defaultCache
  const guest = buildGuest(cache)
  const work = fs.mkdtempSync(path.join(cache, ".read-"))
  try {
    const input = path.join(work, "input")
    fs.mkdirSync(path.join(input, "bin"), { recursive: true })
    fs.mkdirSync(path.join(input, "lib"), { recursive: true })
    fs.copyFileSync(binary, path.join(input, "bin", "cas-migrator"))
    fs.chmodSync(path.join(input, "bin", "cas-migrator"), 0o755)
    for (const library of librariesOf(binary)) fs.copyFileSync(library, path.join(input, "lib", path.basename(library)))
    ext4Image(path.join(work, "input.img"), input, 64 << 20)
    const disk = path.join(work, "disk")
    fs.mkdirSync(disk)
    copyTree(root, path.join(disk, "docker"))
    ext4Image(path.join(work, "work.img"), disk, 1 << 30)
    const guestRun = boot(guest, "read", path.join(work, "input.img"), path.join(work, "work.img"), options.echo ?? false)
    withMounted(path.join(work, "work.img"), (dir) => {
      fs.rmSync(root, { recursive: true, force: true })
      copyTree(path.join(dir, "docker"), root)
      fs.mkdirSync(outDir, { recursive: true })
      if (fs.existsSync(path.join(dir, "out"))) run("cp", ["-a", `${path.join(dir, "out")}/.`, outDir])
    })
    fs.writeFileSync(path.join(outDir, "console.log"), guestRun.console)
    return guestRun
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

const mib = (args: ReadonlyArray<string>, flag: string, fallback: number) => {
  const at = args.indexOf(flag)
  return at < 0 ? fallback : Number(args[at + 1]?.replace(/MiB$/i, "")) * 2 ** 20
}
const valueOf = (args: ReadonlyArray<string>, flag: string) => {
  const at = args.indexOf(flag)
  return at < 0 ? undefined : args[at + 1]
}

if (import.meta.main) {
  const [command, ...args] = process.argv.slice(2)
  const cache = valueOf(args, "--cache")
  const started = performance.now()
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1)
  if (command === "build" && args.length >= 2) {
    const result = buildThinPoolInGuest(path.resolve(args[0]!), path.resolve(args[1]!), { deviceSize: mib(args, "--device-size", 64 << 20), echo: true, ...(cache ? { cache } : {}) })
    process.stderr.write(`${result.devices} thin devices${result.cached ? " (cached pool)" : ""}, ${seconds()} s\n`)
  } else if (command === "read" && args.length >= 3) {
    const { status } = readThinPoolInGuest(path.resolve(args[0]!), path.resolve(args[1]!), path.resolve(args[2]!), { echo: true, ...(cache ? { cache } : {}) })
    process.stderr.write(`guest read finished with status ${status ?? "none (it did not finish)"}, ${seconds()} s\n`)
    process.exit(status === 0 ? 0 : 1)
  } else {
    process.stderr.write("usage: thin-pool-in-guest.ts build SRC_ROOT DST_ROOT [--device-size 64MiB] [--cache DIR]\n       thin-pool-in-guest.ts read ROOT BINARY OUT_DIR [--cache DIR]\n")
    process.exit(2)
  }
}
