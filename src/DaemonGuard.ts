/**
 * `migrate` must not run beside a Docker daemon using the same root, nor
 * beside another migrator: it looks for a live daemon (its pid file, or a
 * `docker daemon` / `dockerd` process whose root is this one) and takes a
 * lock (a file created exclusively under `image/`, holding our PID, removed
 * at the end; a lock whose process is gone is taken over).
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import { errorCode, errorMessage } from "./platform/ErrorCode.ts"
import { readSmallText, SMALL_FILE_LIMIT } from "./platform/RegularFile.ts"
import { recordIfNew } from "./rollback/Journal.ts"
import { processAlive } from "./platform/Processes.ts"
import { Effect, Schema } from "effect"

/** Why `migrate` will not run. */
export class RootInUseError extends Schema.TaggedError<RootInUseError>()("RootInUseError", {
  root: Schema.String,
  reason: Schema.Literals(["DaemonRunning", "MigratorRunning"]),
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot migrate ${this.root}: ${this.detail}`
  }
}

/** The Docker root a daemon command line uses (`-g`, `--graph`, `--data-root`; default /var/lib/docker). */
const rootOfDaemon = (argv: ReadonlyArray<string>): string | undefined => {
  const program = path.basename(argv[0] ?? "")
  const isDaemon = program === "dockerd" || (program === "docker" && (argv.includes("daemon") || argv.includes("-d")))
  if (!isDaemon) return undefined
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!
    for (const flag of ["-g", "--graph", "--data-root"]) {
      if (arg === flag) return argv[i + 1]
      if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1)
    }
  }
  return "/var/lib/docker"
}

/** A daemon that uses `root`, described for the error message, if any. */
export const findDaemon = async (root: string): Promise<string | undefined> => {
  const resolved = path.resolve(root)
  for (const pidFile of [path.join(resolved, "docker.pid"), "/var/run/docker.pid", "/run/docker.pid"]) {
    const text = await readSmallText(pidFile, SMALL_FILE_LIMIT.value).catch(() => undefined)
    const pid = Number(text?.trim())
    if (text === undefined || !processAlive(pid)) continue
    const argv = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").filter((a) => a !== "")
    const daemonRoot = rootOfDaemon(argv)
    if (daemonRoot === undefined || path.resolve(daemonRoot) === resolved || pidFile.startsWith(resolved)) {
      return `a Docker daemon is running (pid ${pid}, from ${pidFile})`
    }
  }
  for (const entry of await fs.readdir("/proc").catch(() => [] as Array<string>)) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").filter((a) => a !== "")
    const daemonRoot = rootOfDaemon(argv)
    if (daemonRoot !== undefined && path.resolve(daemonRoot) === resolved) {
      return `a Docker daemon uses this root (pid ${entry}: ${argv.join(" ")})`
    }
  }
  return undefined
}

const LOCK = ".cas-migrator.lock"

/**
 * Holds the migration lock for the scope; fails if a live daemon or migrator uses the root. An `image/`
 * made for the lock is journaled in `journalRoot` (the graph's root, also when `root` is `--target-root`).
 */
export const guardRoot = (root: string, options: { readonly force: boolean; readonly journalRoot?: string }) =>
  Effect.gen(function* () {
    if (!options.force) {
      const daemon = yield* Effect.promise(() => findDaemon(root))
      if (daemon !== undefined) {
        return yield* new RootInUseError({
          root,
          reason: "DaemonRunning",
          detail: `${daemon}; stop it first (or pass --force if you are sure it does not use this root)`,
        })
      }
    }
    const dir = path.join(root, "image")
    const lock = path.join(dir, LOCK)
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const journalRoot = options.journalRoot ?? root
          recordIfNew(journalRoot, path.relative(journalRoot, dir), "directory")
          await fs.mkdir(dir, { recursive: true, mode: 0o700 })
          for (let attempt = 0; attempt < 2; attempt++) {
            try {
              await fs.writeFile(lock, String(process.pid), { flag: "wx", mode: 0o600 })
              return
            } catch (error) {
              if (errorCode(error) !== "EEXIST") throw error
              const holder = Number((await readSmallText(lock, SMALL_FILE_LIMIT.value).catch(() => "")).trim())
              if (processAlive(holder)) throw new Error(`another migrator holds ${lock} (pid ${holder})`)
              await fs.rm(lock, { force: true }) // its process is gone
            }
          }
          throw new Error(`cannot take ${lock}`)
        },
        catch: (error) =>
          new RootInUseError({ root, reason: "MigratorRunning", detail: errorMessage(error) }),
      }),
      () => Effect.promise(() => fs.rm(lock, { force: true })),
    )
  })
