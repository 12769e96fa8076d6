/**
 * The `cas-migrator` command line: flags → configuration → the driver layer
 * chosen by `--storage-driver` → the program → an exit code.
 *
 * Exit codes: 0 everything done, 1 some layers failed, 2 bad usage or an
 * unusable Docker root.
 *
 * @module
 */
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { Console, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as fs from "node:fs/promises"
import { builtinDrivers, storeDrivers } from "../../plugins/index.ts"
import { checksums, type ChecksumsReport } from "../checksums/Checksums.ts"
import { crc64EngineKind } from "../crc/Crc64Engine.ts"
import { checkRoot, chooseDriver, RootError } from "../legacy/DockerRoot.ts"
import { findDaemon, guardRoot, RootInUseError } from "../DaemonGuard.ts"
import { rollback, RollbackError } from "../rollback/Rollback.ts"
import { HashPool } from "../hash/HashPool.ts"
import { driversWith } from "../driver/PluginLoader.ts"
import { runConformance } from "../../test/conformance/StorageDriverConformance.ts"
import { markerNames, migrate, readMappings } from "../migrate/Migrate.ts"
import { OVERLAY2 } from "../overlay2/Overlay2Layout.ts"
import { overlay2Target } from "../overlay2/Overlay2Target.ts"
import { checkSpace, containerBytes, freeBytes, neededBytes } from "../overlay2/SpaceCheck.ts"
import type { TargetDriver } from "../driver/TargetDriver.ts"
import { EXPORT_FORMATS, type ExportOptions, exportImages } from "../export/Export.ts"
import { Progress } from "../Progress.ts"
import { verifyStore } from "../verify/Verify.ts"
import { plan } from "../plan/Plan.ts"
import * as StderrLogger from "./StderrLogger.ts"

/** The exit codes of every command. */
export const ExitCode = { Done: 0, SomeFailed: 1, Unusable: 2 } as const

/** Prints an error's message on stderr and ends the command with `code`. */
const failWith = (code: number) => (error: { readonly message: string }) => Effect.as(Console.error(error.message), code)

/**
 * `failWith`, and with `--json` also the summary of a run that stopped early on
 * stdout (a runbook reading stdout always gets JSON): the command, the exit
 * code, the error's kind and message.
 */
const failWithSummary = (command: string, config: { readonly root: string; readonly json: boolean }, code: number) =>
(error: { readonly message: string; readonly _tag: string }) =>
  Effect.andThen(
    failWith(code)(error),
    config.json
      ? Effect.as(
        Console.log(JSON.stringify({ command, root: config.root, exitCode: code, fatal: error.message, error: error._tag }, null, 2)),
        code,
      )
      : Effect.succeed(code),
  )

const graph = Flag.String("graph").pipe(
  Flag.withAlias("g"),
  Flag.withDefault("/var/lib/docker"),
  Flag.withDescription("Docker root directory (holds graph/ and the storage driver's directory)"),
)
const storageDriver = Flag.String("storage-driver").pipe(
  Flag.withAlias("s"),
  Flag.withDescription(
    `Storage driver whose layers to read: ${Object.keys(builtinDrivers).join(", ")} (default: detected from the root)`,
  ),
  Flag.optional,
)
const storageOpts = Flag.String("storage-opt").pipe(
  Flag.withDescription("A storage driver option key=value, as given to Docker (zfs: zfs.fsname=<dataset>); repeatable"),
  Flag.atLeast(0),
)
const plugins = Flag.String("plugin").pipe(
  Flag.withDescription("Load a storage driver plugin module (exports `name` and `layer`); repeatable"),
  Flag.atLeast(0),
)
const jobs = Flag.Int("jobs").pipe(
  Flag.withAlias("j"),
  Flag.withDescription("Layers hashed in parallel (default: number of CPU cores)"),
  Flag.optional,
)
const json = Flag.Boolean("json").pipe(
  Flag.withDescription("Print a machine-readable summary on stdout"),
  Flag.withDefault(false),
)

/** The flags every command shares, as configuration. */
const commonConfig = (flags: {
  readonly graph: string
  readonly storageDriver: Option.Option<string>
  readonly storageOpts: ReadonlyArray<string>
  readonly plugins: ReadonlyArray<string>
  readonly json: boolean
}) => ({
  root: path.resolve(flags.graph),
  driver: Option.getOrUndefined(flags.storageDriver),
  storageOpts: flags.storageOpts,
  plugins: flags.plugins,
  json: flags.json,
})

/** Ends the process with a command's exit code (runMain exits non-zero only on failure). */
const exitWith = (code: number) => Effect.sync(() => void (process.exitCode = code))

const checksumsCommand = Command.make(
  "checksums",
  { graph, storageDriver, storageOpts, plugins, jobs, json },
  (flags) =>
    runChecksums({
      ...commonConfig(flags),
      jobs: Option.getOrElse(flags.jobs, () => os.availableParallelism()),
    }).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Compute every layer's diffID and size and write Docker's helper files (.migration-diffid, .migration-size, " +
      ".migration-tardata) into graph/<id>/. Safe while the old daemon runs: it only reads layer data.",
  ),
)

const force = Flag.Boolean("force").pipe(
  Flag.withDescription("Migrate even if a Docker daemon seems to use the root"),
  Flag.withDefault(false),
)

const targetDriver = Flag.String("target-driver").pipe(
  Flag.withDescription("Write the store for this driver instead of the graph's own: overlay2 (each layer unpacked into overlay2/)"),
  Flag.optional,
)
const targetRoot = Flag.String("target-root").pipe(
  Flag.withDescription("With --target-driver: the Docker root the new store and the driver's directory go into (default: --graph)"),
  Flag.optional,
)

/** `--target-driver` and `--target-root` as `plan` and `migrate` take them. */
interface TargetConfig {
  readonly targetDriver?: string | undefined
  readonly targetRoot?: string | undefined
}

const targetConfig = (flags: { readonly targetDriver: Option.Option<string>; readonly targetRoot: Option.Option<string> }): TargetConfig => ({
  targetDriver: Option.getOrUndefined(flags.targetDriver),
  targetRoot: Option.match(flags.targetRoot, { onNone: () => undefined, onSome: (dir) => path.resolve(dir) }),
})

const migrateCommand = Command.make(
  "migrate",
  { graph, storageDriver, storageOpts, plugins, jobs, json, force, targetDriver, targetRoot },
  (flags) =>
    runMigrate({
      ...commonConfig(flags),
      jobs: Option.getOrElse(flags.jobs, () => os.availableParallelism()),
      force: flags.force,
      ...targetConfig(flags),
    }).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Do offline everything a Docker 1.10 daemon did at its first start on a legacy root: checksums, image configs, " +
      "layer metadata, tags, containers, so that the new daemon starts with nothing left to do. Refuses to run while a " +
      "Docker daemon uses the root.",
  ),
)

const pluginTestCommand = Command.make(
  "plugin-test",
  { graph, storageDriver, storageOpts, plugins, json },
  (flags) =>
    runPluginTest(commonConfig(flags)).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Run the storage driver conformance kit on a plugin (--plugin FILE) or a built-in driver over a Docker root: " +
      "layers listed, views read-only and released, nothing left mounted, nothing changed.",
  ),
)

const output = Flag.String("output").pipe(
  Flag.withAlias("o"),
  Flag.withDescription("Where to write: a file (docker-archive, oci-archive), a directory (oci), or - for stdout"),
)
const format = Flag.Literals("format", EXPORT_FORMATS).pipe(
  Flag.withDescription("docker-archive (docker load, podman load), oci (a layout directory) or oci-archive (the layout as one tar)"),
  Flag.withDefault("docker-archive" as const),
)
const gzip = Flag.Boolean("gzip").pipe(Flag.withDescription("OCI layers as gzip tars"), Flag.withDefault(false))
const all = Flag.Boolean("all").pipe(
  Flag.withDescription("With no IMAGE: also untagged images that are no other image's parent"),
  Flag.withDefault(false),
)
const images = Argument.String("image").pipe(
  Argument.withDescription("A tag (debian:jessie), a name@sha256: digest, or a v1 image ID or unique prefix (12+); none: every tagged image"),
  Argument.variadic(),
)

const exportCommand = Command.make(
  "export",
  { graph, storageDriver, storageOpts, plugins, jobs, json, output, format, gzip, all, images, force: Flag.Boolean("force").pipe(
    Flag.withDescription("Replace an existing output, once the new one is complete"),
    Flag.withDefault(false),
  ) },
  (flags) =>
    runExport({
      ...commonConfig(flags),
      jobs: Option.getOrElse(flags.jobs, () => os.availableParallelism()),
      output: flags.output,
      format: flags.format,
      gzip: flags.gzip,
      all: flags.all,
      images: flags.images,
      force: flags.force,
    }).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Write legacy images as a docker-archive or an OCI image layout, straight from the graph: no daemon, no migrate first, " +
      "the Docker root only read. docker load gives every image the ID migrate gives it.",
  ),
)

const quick = Flag.Boolean("quick").pipe(
  Flag.withDescription("Check metadata only: do not rebuild and hash each layer's data"),
  Flag.withDefault(false),
)

const verifyCommand = Command.make(
  "verify",
  { graph, storageDriver, storageOpts, plugins, json, quick },
  (flags) => runVerify({ ...commonConfig(flags), quick: flags.quick }).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Check a Docker 1.10+ store offline (ours or any daemon's): image configs hash to their IDs, layers agree with " +
      "their chain IDs, parents and tar-split, each layer's data hashes to its diffID (not with --quick), tags and " +
      "containers resolve. Read-only. Exit 0 when sound, 1 with every problem listed.",
  ),
)

/** Runs `verify`; exit 0 when the store is sound, 1 when not. */
export const runVerify = (config: Omit<ChecksumsConfig, "jobs"> & { readonly quick: boolean }): Effect.Effect<number> =>
  Effect.gen(function* () {
    yield* checkRoot(config.root)
    const drivers = yield* driversWith(storeDrivers, config.plugins)
    const stores = yield* Effect.promise(() =>
      fs.readdir(path.join(config.root, "image"), { withFileTypes: true }).then((entries) => entries.filter((e) => e.isDirectory()).map((e) => e.name), () => [])
    )
    const driverName = config.driver ?? (stores.length === 1 ? stores[0]! : undefined)
    if (driverName === undefined) {
      return yield* new RootError({
        root: config.root,
        reason: stores.length === 0 ? "NoDriver" : "AmbiguousDriver",
        detail: stores.length === 0 ? "no store in image/ (nothing migrated?)" : `several stores in image/ (${stores.join(", ")}); choose one with --storage-driver`,
      })
    }
    const plugin = drivers[driverName]
    if (plugin === undefined) {
      return yield* new RootError({ root: config.root, reason: "UnknownDriver", detail: `no reader for the ${driverName} driver's layers` })
    }
    const progress = new Progress()
    const started = performance.now()
    const report = yield* verifyStore({ root: config.root, driverName, quick: config.quick, onLayerHashed: (n) => progress.addBytes(n) }).pipe(
      Effect.provide(plugin(config.root, yield* parseStorageOpts({ ...config, jobs: 1 }))),
      Effect.ensuring(Effect.sync(() => progress.stop())),
    )
    const code = report.problems.length === 0 ? ExitCode.Done : ExitCode.SomeFailed
    const seconds = (performance.now() - started) / 1000
    for (const p of report.problems) yield* Effect.logError(`${p.kind} ${p.item}: ${p.file}: ${p.problem}`)
    if (config.json) {
      yield* Console.log(JSON.stringify({
        command: "verify",
        root: config.root,
        driver: driverName,
        exitCode: code,
        sound: code === ExitCode.Done,
        summary: {
          images: report.images,
          layers: report.layers,
          layersHashed: report.layersHashed,
          mounts: report.mounts,
          references: report.references,
          containers: report.containers,
          problems: report.problems.length,
          seconds: Number(seconds.toFixed(3)),
        },
        problems: report.problems,
      }, null, 2))
    } else {
      yield* Effect.sync(() =>
        void process.stderr.write(
          `verify ${driverName}: ${report.problems.length === 0 ? "sound" : `${report.problems.length} problems`} ` +
            `(${report.images} images, ${report.layers} layers${config.quick ? "" : `, ${report.layersHashed} hashed`}, ` +
            `${report.references} references, ${report.containers} containers) in ${seconds.toFixed(2)} s\n`,
        )
      )
    }
    return code
  }).pipe(
    Effect.catchTags({
      RootError: failWithSummary("verify", config, ExitCode.Unusable),
      DriverError: failWithSummary("verify", config, ExitCode.Unusable),
      PluginError: failWithSummary("verify", config, ExitCode.Unusable),
    }),
  )

const rollbackChecksums = Flag.Boolean("checksums").pipe(
  Flag.withDescription("Also remove the helper files (.migration-*) that checksums or migrate wrote"),
  Flag.withDefault(false),
)
const rollbackForce = Flag.Boolean("force").pipe(
  Flag.withDescription("Roll back even though a newer daemon added or changed things since migrate (they are listed)"),
  Flag.withDefault(false),
)

const rollbackCommand = Command.make(
  "rollback",
  { graph, json, checksums: rollbackChecksums, force: rollbackForce },
  (flags) =>
    runRollback({ root: path.resolve(flags.graph), json: flags.json, checksums: flags.checksums, force: flags.force }).pipe(
      Effect.flatMap(exitWith),
    ),
).pipe(
  Command.withDescription(
    "Take the root back to its state before migrate (and with --checksums before checksums): remove exactly what they " +
      "created, as their journal records it; never layer data. Refuses when a newer daemon changed things since, unless --force.",
  ),
)

/** Runs `rollback`: 0 done (or nothing to do), 1 refused (changes since migrate), 2 unusable. */
export const runRollback = (config: { readonly root: string; readonly json: boolean; readonly checksums: boolean; readonly force: boolean }) =>
  Effect.gen(function* () {
    yield* checkRoot(config.root)
    const daemon = yield* Effect.promise(() => findDaemon(config.root))
    if (daemon !== undefined && !config.force) {
      return yield* new RootInUseError({ root: config.root, reason: "DaemonRunning", detail: `${daemon}; stop it first` })
    }
    const report = yield* Effect.tryPromise({
      try: () => rollback(config.root, config),
      catch: (error) => (error instanceof RollbackError ? error : new RollbackError({ detail: String(error) })),
    })
    for (const change of report.sinceMigrate) {
      yield* (report.refused ? Effect.logError : Effect.logWarning)(`${change.kind} ${change.item}: ${change.detail}`)
    }
    const code = report.refused ? ExitCode.SomeFailed : ExitCode.Done
    if (report.refused) yield* Effect.logError(`rollback refused: ${report.sinceMigrate.length} changes since migrate (listed); --force rolls back anyway`)
    if (config.json) {
      yield* Console.log(JSON.stringify({
        command: "rollback",
        root: config.root,
        exitCode: code,
        refused: report.refused,
        nothingToDo: report.nothingToDo,
        removed: report.removed,
        sinceMigrate: report.sinceMigrate,
      }, null, 2))
    } else {
      yield* Effect.sync(() =>
        void process.stderr.write(
          report.nothingToDo
            ? "rollback: nothing to roll back (no journal)\n"
            : report.refused
            ? `rollback: refused, ${report.sinceMigrate.length} changes since migrate\n`
            : `rollback: removed ${report.removed.length} paths${report.sinceMigrate.length > 0 ? `; the old daemon will not see ${report.sinceMigrate.length} changes made since` : ""}\n`,
        )
      )
    }
    return code
  }).pipe(
    Effect.catchTags({
      RootError: failWithSummary("rollback", config, ExitCode.Unusable),
      RootInUseError: failWithSummary("rollback", config, ExitCode.Unusable),
      RollbackError: failWithSummary("rollback", config, ExitCode.Unusable),
    }),
  )

const deep = Flag.Boolean("deep").pipe(
  Flag.withDescription("Also hash every layer (the whole checksums work, nothing written): every fallback and image ID known"),
  Flag.withDefault(false),
)

const planCommand = Command.make(
  "plan",
  { graph, storageDriver, storageOpts, plugins, jobs, json, deep, targetDriver, targetRoot },
  (flags) =>
    runPlan({
      ...commonConfig(flags),
      jobs: Option.getOrElse(flags.jobs, () => os.availableParallelism()),
      deep: flags.deep,
      ...targetConfig(flags),
    }).pipe(Effect.flatMap(exitWith)),
).pipe(
  Command.withDescription(
    "Say what migrate would do, item by item, and how long it would take, writing nothing (safe beside a running old " +
      "daemon): layer paths, images, containers, tags, the space needed and free (with --target-driver overlay2: in the " +
      "target, for the unpacked layers). Exit 0 when migrate would complete with no failure, 1 when some items would " +
      "fail (listed), 2 for an unusable root or a target without the space migrate would need.",
  ),
)

/** Runs `plan`; 0 when migrate would complete with no failure, 1 when items would fail, 2 when it would refuse. */
export const runPlan = (
  config: ChecksumsConfig & TargetConfig & { readonly deep: boolean },
): Effect.Effect<number> =>
  Effect.gen(function* () {
    if (yield* badJobs("plan", config.jobs)) return ExitCode.Unusable
    if (yield* badTarget("plan", config)) return ExitCode.Unusable
    const { driverName, options, driver } = yield* prepare({ ...config, json: true })
    const scratch = path.join(os.tmpdir(), `cas-migrator-plan-${process.pid}`)
    yield* Effect.promise(() => fs.mkdir(scratch, { recursive: true, mode: 0o700 }))
    const targetRootDir = config.targetRoot ?? config.root
    const { report, needed } = yield* Effect.gen(function* () {
      const report = yield* plan({
        root: config.root,
        driverName,
        deep: config.deep,
        jobs: config.jobs,
        checksumsOptions: { ...options, dryRun: { scratch } },
      })
      // What migrate's own space check would find: what it has not migrated into the target yet.
      const needed = config.targetDriver === undefined ? undefined : yield* neededInTarget(config.root, targetRootDir)
      return { report, needed }
    }).pipe(
      Effect.provide(driver),
      Effect.ensuring(Effect.promise(() => fs.rm(scratch, { recursive: true, force: true }))),
    )
    let target: { readonly driver: string; readonly root: string; readonly neededBytes: number; readonly freeBytes: number; readonly fits: boolean } | undefined
    if (config.targetDriver !== undefined && needed !== undefined) {
      const free = yield* freeBytes(targetRootDir)
      target = { driver: config.targetDriver, root: targetRootDir, neededBytes: needed, freeBytes: free, fits: free >= needed }
    }
    const failedLayers = report.layers.filter((l) => l.path === "failed")
    const failedImages = report.images.filter((i) => i.status === "failed")
    const code = target?.fits === false
      ? ExitCode.Unusable
      : failedLayers.length > 0 || failedImages.length > 0 || report.fatal !== undefined
      ? ExitCode.SomeFailed
      : ExitCode.Done
    if (report.daemon !== undefined) yield* Effect.logWarning(`${report.daemon}: migrate will refuse until it is stopped`)
    for (const link of report.symlinks) yield* Effect.logInfo(`${link} is a symlink: followed, as Docker did`)
    const summary = {
      layers: report.layers.length,
      tarsplit: report.layers.filter((l) => l.path === "tarsplit").length,
      fallback: report.layers.filter((l) => l.path === "fallback").length,
      preexisting: report.layers.filter((l) => l.path === "preexisting").length,
      failedLayers: failedLayers.length,
      images: report.images.filter((i) => i.status !== "failed").length,
      failedImages: failedImages.length,
      containers: report.containers.filter((c) => c.status === "migrated").length,
      tags: report.tags.filter((t) => t.status === "added").length,
      skippedTags: report.tags.filter((t) => t.status === "skipped").length,
      bytesToHash: report.bytesToHash,
      storeBytes: report.storeBytes,
      freeBytes: report.freeBytes,
      hashMBPerSecondPerCore: Number((report.hashBytesPerSecond / 1e6).toFixed(0)),
      estimatedSeconds: Number(report.estimatedSeconds.toFixed(1)),
    }
    if (config.json) {
      yield* Console.log(JSON.stringify({
        command: "plan",
        root: config.root,
        driver: driverName,
        deep: config.deep,
        exitCode: code,
        fatal: report.fatal ?? null,
        daemon: report.daemon ?? null,
        symlinks: report.symlinks,
        summary,
        target: target === undefined ? null : { ...target, freeBytes: Number.isFinite(target.freeBytes) ? target.freeBytes : null },
        layers: report.layers,
        images: report.images,
        containers: report.containers,
        tags: report.tags,
      }, null, 2))
    } else {
      const lines = [
        `plan for ${config.root} (${driverName}):`,
        `  layers: ${summary.tarsplit} tar-split, ${summary.fallback} regenerated, ${summary.preexisting} already done, ${summary.failedLayers} failing`,
        `  images: ${summary.images} migrated, ${summary.failedImages} failing; containers: ${summary.containers}; tags: ${summary.tags} (${summary.skippedTags} skipped)`,
        `  to hash: ${(summary.bytesToHash / 1e6).toFixed(0)} MB, about ${summary.estimatedSeconds} s; new store: ${(summary.storeBytes / 1e6).toFixed(1)} MB, free: ${(summary.freeBytes / 1e9).toFixed(1)} GB`,
        ...(target === undefined ? [] : [
          `  ${target.driver} in ${target.root}: the unpacked layers need about ${(target.neededBytes / 1e6).toFixed(1)} MB, ` +
          `${(target.freeBytes / 1e6).toFixed(1)} MB free${target.fits ? "" : ": migrate would refuse"}`,
        ]),
        ...failedLayers.map((l) => `  layer ${l.id} would fail: ${"reason" in l ? l.reason : ""}`),
        ...failedImages.map((i) => `  image ${i.id} would fail: ${"reason" in i ? i.reason : ""}`),
        ...(report.fatal === undefined ? [] : [`  migrate would stop: ${report.fatal}`]),
        ...(report.daemon === undefined ? [] : [`  ${report.daemon}: stop it before migrate`]),
      ]
      yield* Effect.sync(() => void process.stderr.write(lines.join("\n") + "\n"))
    }
    return code
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      RootError: failWithSummary("plan", config, ExitCode.Unusable),
      GraphRootError: failWithSummary("plan", config, ExitCode.Unusable),
      DriverError: failWithSummary("plan", config, ExitCode.Unusable),
      PluginError: failWithSummary("plan", config, ExitCode.Unusable),
    }),
  )

/** The root command. */
export const cli = Command.make("cas-migrator").pipe(
  Command.withDescription("Convert a legacy Docker (<= 1.9) graph into Docker 1.10's content-addressable store"),
  Command.withSubcommands([planCommand, checksumsCommand, migrateCommand, verifyCommand, rollbackCommand, exportCommand, pluginTestCommand]),
)

/**
 * Whether each layer worker gets a CRC lane thread for big files' CRC-64: only
 * with the WebAssembly CRC (about 2 GB/s, so a second core helps one big
 * layer); the native one runs at tens of GB/s in the layer worker itself, and
 * handing chunks to another thread would cost more than it saves.
 */
const crcLanes = (): boolean => crc64EngineKind() === "wasm"

/** Runs `export` and prints its results; returns the exit code. */
export const runExport = (
  config: ChecksumsConfig & Omit<ExportOptions, "root" | "driverName" | "pool">,
): Effect.Effect<number> =>
  Effect.gen(function* () {
    if (config.json && config.output === "-") {
      return yield* new RootError({ root: config.root, reason: "Missing", detail: "--json prints on stdout, where --output - writes the archive" })
    }
    if (yield* badJobs("export", config.jobs)) return ExitCode.Unusable
    yield* checkRoot(config.root)
    const drivers = yield* driversWith(builtinDrivers, config.plugins)
    const driverName = yield* chooseDriver(config.root, Object.keys(drivers), config.driver)
    const driver = drivers[driverName]!(config.root, yield* parseStorageOpts({ ...config, jobs: 1 }))
    const started = performance.now()
    const progress = new Progress()
    // Layer workers as in checksums (with CRC lanes only for the WebAssembly CRC).
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => new HashPool({ workers: config.jobs, lanes: crcLanes(), onProgress: (n) => progress.addBytes(n) })),
      (pool) => Effect.sync(() => pool.close()),
    )
    const report = yield* exportImages({
      ...config,
      driverName,
      pool,
      onPlanned: (layers) => progress.plan(layers, 0),
      onLayerDone: () => progress.layerDone(),
    }).pipe(Effect.provide(driver), Effect.ensuring(Effect.sync(() => progress.stop())))
    const failed = report.images.filter((i) => i.status === "failed").length
    const exported = report.images.length - failed
    const code = failed > 0 || report.unresolved.length > 0 ? ExitCode.SomeFailed : ExitCode.Done
    const seconds = (performance.now() - started) / 1000
    if (config.json) {
      yield* Console.log(JSON.stringify({
        command: "export",
        root: config.root,
        driver: driverName,
        format: config.format,
        output: config.output,
        exitCode: code,
        summary: {
          images: exported,
          failedImages: failed,
          unresolved: report.unresolved.length,
          layers: report.layers.length,
          bytes: report.layers.reduce((sum, l) => sum + l.bytes, 0),
          seconds: Number(seconds.toFixed(3)),
        },
        images: report.images,
        unresolved: report.unresolved,
        layers: report.layers,
      }, null, 2))
    } else {
      yield* Effect.sync(() =>
        void process.stderr.write(
          `export: ${exported} images to ${config.output} (${config.format}), ${failed} failed, ${report.unresolved.length} not found; ` +
            `${report.layers.length} layers in ${seconds.toFixed(2)} s\n`,
        )
      )
    }
    return code
  }).pipe(
    Effect.catchTags({
      RootError: failWithSummary("export", config, ExitCode.Unusable),
      DriverError: failWithSummary("export", config, ExitCode.Unusable),
      PluginError: failWithSummary("export", config, ExitCode.Unusable),
      ExportError: failWithSummary("export", config, ExitCode.Unusable),
    }),
    Effect.scoped,
  )

/** Runs the conformance kit on the chosen driver; exit 0 when every check passes. */
export const runPluginTest = (
  config: Omit<ChecksumsConfig, "jobs"> & { readonly json: boolean },
): Effect.Effect<number> =>
  Effect.gen(function* () {
    yield* checkRoot(config.root)
    const drivers = yield* driversWith(builtinDrivers, config.plugins)
    const loaded = config.plugins.length > 0 && config.driver === undefined
      ? Object.keys(drivers).find((name) => !(name in builtinDrivers))
      : undefined
    const driverName = loaded ?? (yield* chooseDriver(config.root, Object.keys(drivers), config.driver))
    const options = yield* parseStorageOpts({ ...config, jobs: 1 })
    const storage = path.join(config.root, driverName)
    const results = yield* Effect.promise(() =>
      // The kit runs the driver on its own runtime: its logs go to stderr as the CLI's do, keeping --json clean.
      runConformance({ driver: Layer.provide(drivers[driverName]!(config.root, options), StderrLogger.layer), graphRoot: config.root, storage })
    )
    const passed = results.filter((r) => r.ok).length
    if (config.json) {
      yield* Console.log(JSON.stringify({ command: "plugin-test", driver: driverName, passed, total: results.length, checks: results }, null, 2))
    } else {
      for (const r of results) yield* Console.log(`${r.ok ? "PASS" : "FAIL"} ${r.check}${r.detail === "" ? "" : `: ${r.detail}`}`)
      yield* Console.log(`plugin-test ${driverName}: ${passed}/${results.length} checks passed`)
    }
    return passed === results.length ? ExitCode.Done : ExitCode.SomeFailed
  }).pipe(
    Effect.catchTags({
      RootError: failWith(ExitCode.Unusable),
      PluginError: failWith(ExitCode.Unusable),
    }),
  )

interface ChecksumsConfig {
  readonly root: string
  readonly driver: string | undefined
  readonly storageOpts: ReadonlyArray<string>
  readonly plugins: ReadonlyArray<string>
  readonly jobs: number
  readonly json: boolean
}

/** What both commands start with: a usable root, its driver, the worker pool and the progress line. */
const prepare = (config: ChecksumsConfig) =>
  Effect.gen(function* () {
    yield* checkRoot(config.root)
    const drivers = yield* driversWith(builtinDrivers, config.plugins)
    const driverName = yield* chooseDriver(config.root, Object.keys(drivers), config.driver)
    const progress = new Progress()
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => new HashPool({ workers: config.jobs, lanes: crcLanes(), onProgress: (n) => progress.addBytes(n) })),
      (pool) => Effect.sync(() => pool.close()),
    )
    const options = {
      root: config.root,
      pool,
      concurrency: config.jobs * 2,
      onPlanned: (layers: number, bytes: number) => progress.plan(layers, bytes),
      onLayerDone: () => progress.layerDone(),
    }
    return { driverName, progress, options, driver: drivers[driverName]!(config.root, yield* parseStorageOpts(config)) }
  })

/** `--storage-opt key=value` pairs (a malformed one makes the root unusable: exit 2). */
const parseStorageOpts = (config: ChecksumsConfig) =>
  Effect.gen(function* () {
    const options = new Map<string, string>()
    for (const option of config.storageOpts) {
      const equals = option.indexOf("=")
      if (equals <= 0) {
        return yield* new RootError({ root: config.root, reason: "UnknownDriver", detail: `--storage-opt ${option}: expected key=value` })
      }
      options.set(option.slice(0, equals).trim().toLowerCase(), option.slice(equals + 1).trim())
    }
    return options
  })

const badTarget = (command: string, config: TargetConfig) =>
  config.targetDriver !== undefined && config.targetDriver !== OVERLAY2
    ? Effect.as(Console.error(`Cannot run ${command}: --target-driver ${config.targetDriver}: only ${OVERLAY2} is supported`), true)
    : config.targetRoot !== undefined && config.targetDriver === undefined
    ? Effect.as(Console.error(`Cannot run ${command}: --target-root needs --target-driver`), true)
    : Effect.succeed(false)

/**
 * What the target needs for the layers not yet migrated into it, unpacked,
 * and for the containers not yet migrated (migrate checks it; plan predicts it).
 */
const neededInTarget = (root: string, targetRoot: string) =>
  Effect.gen(function* () {
    const done = yield* Effect.promise(() => readMappings(root, markerNames(OVERLAY2).images).catch(() => new Map<string, string>()))
    return (yield* neededBytes(root, new Set(done.keys()))) + (yield* containerBytes(root, targetRoot))
  })

const badJobs = (command: string, jobs: number) =>
  !Number.isInteger(jobs) || jobs < 1
    ? Effect.as(Console.error(`Cannot run ${command}: --jobs must be a positive integer, got ${jobs}`), true)
    : Effect.succeed(false)

/** Runs `checksums` and prints its results; returns the exit code. */
export const runChecksums = (config: ChecksumsConfig): Effect.Effect<number> =>
  Effect.gen(function* () {
    if (yield* badJobs("checksums", config.jobs)) return ExitCode.Unusable
    const { driverName, progress, options, driver } = yield* prepare(config)
    const report = yield* checksums(options).pipe(Effect.provide(driver))
    progress.stop()
    const failed = report.layers.filter((layer) => layer.status === "failed").length
    const code = failed > 0 ? ExitCode.SomeFailed : ExitCode.Done
    yield* config.json
      ? Console.log(JSON.stringify(jsonSummary(config.root, driverName, report, progress, code), null, 2))
      : Effect.sync(() => void process.stderr.write(humanSummary(report, progress) + "\n"))
    return code
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      RootError: failWithSummary("checksums", config, ExitCode.Unusable),
      GraphRootError: failWithSummary("checksums", config, ExitCode.Unusable),
      DriverError: failWithSummary("checksums", config, ExitCode.Unusable),
      PluginError: failWithSummary("checksums", config, ExitCode.Unusable),
    }),
  )

/** Runs `migrate` and prints its results; returns the exit code. */
export const runMigrate = (
  config: ChecksumsConfig & TargetConfig & { readonly force: boolean },
): Effect.Effect<number> =>
  Effect.gen(function* () {
    if (yield* badJobs("migrate", config.jobs)) return ExitCode.Unusable
    if (yield* badTarget("migrate", config)) return ExitCode.Unusable
    yield* checkRoot(config.root)
    yield* guardRoot(config.root, { force: config.force })
    const { driverName, progress, options, driver } = yield* prepare(config)
    // One driver for the space check and the run (a driver may set up devices or mounts).
    const { report, target } = yield* Effect.gen(function* () {
      let target: TargetDriver | undefined
      if (config.targetDriver !== undefined) {
        const targetRoot = config.targetRoot ?? config.root
        if (targetRoot !== config.root) yield* checkRoot(targetRoot)
        // Before anything is written in the target (the guard's lock is).
        yield* checkSpace(targetRoot, yield* neededInTarget(config.root, targetRoot))
        if (targetRoot !== config.root) yield* guardRoot(targetRoot, { force: config.force, journalRoot: config.root })
        target = overlay2Target({ root: config.root, targetRoot, pool: options.pool })
      }
      return { report: yield* migrate({ ...options, driverName, target }), target }
    }).pipe(Effect.provide(driver))
    progress.stop()
    const failedLayers = report.checksums.layers.filter((l) => l.status === "failed").length
    const failedImages = report.images.filter((i) => i.status === "failed").length
    const code = report.fatal !== undefined || failedLayers > 0 || failedImages > 0 ? ExitCode.SomeFailed : ExitCode.Done
    const { bytes, seconds } = progress.totals
    if (config.json) {
      yield* Console.log(JSON.stringify({
        command: "migrate",
        root: config.root,
        driver: driverName,
        ...(target === undefined ? {} : { targetDriver: target.name, targetRoot: target.root }),
        exitCode: code,
        fatal: report.fatal ?? null,
        summary: {
          layers: report.checksums.layers.length,
          failedLayers,
          images: report.images.filter((i) => i.status !== "failed").length,
          failedImages,
          containers: report.containers.filter((c) => c.status === "migrated").length,
          tags: report.tags.filter((t) => t.status === "added").length,
          skippedTags: report.tags.filter((t) => t.status === "skipped").length,
          bytesHashed: bytes,
          seconds: Number(seconds.toFixed(3)),
        },
        layers: report.checksums.layers,
        images: report.images,
        containers: report.containers,
        tags: report.tags,
      }, null, 2))
    } else {
      yield* Effect.sync(() =>
        void process.stderr.write(
          `migrate: ${report.images.filter((i) => i.status !== "failed").length} images, ${failedImages} failed; ` +
            `${report.containers.filter((c) => c.status === "migrated").length} containers; ` +
            `${report.tags.filter((t) => t.status === "added").length} tags (${report.tags.filter((t) => t.status === "skipped").length} skipped)` +
            `${report.fatal === undefined ? "" : `; stopped: ${report.fatal}`}\n`,
        )
      )
    }
    return code
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      RootError: failWithSummary("migrate", config, ExitCode.Unusable),
      RootInUseError: failWithSummary("migrate", config, ExitCode.Unusable),
      DriverError: failWithSummary("migrate", config, ExitCode.Unusable),
      PluginError: failWithSummary("migrate", config, ExitCode.Unusable),
      MigrateError: failWithSummary("migrate", config, ExitCode.SomeFailed),
      TargetSpaceError: failWithSummary("migrate", config, ExitCode.Unusable),
      GraphRootError: failWithSummary("migrate", config, ExitCode.Unusable),
    }),
  )

const jsonSummary = (root: string, driver: string, report: ChecksumsReport, progress: Progress, exitCode: number) => {
  const { bytes, seconds } = progress.totals
  return {
    command: "checksums",
    root,
    driver,
    exitCode,
    summary: {
      layers: report.layers.length,
      computed: report.layers.filter((l) => l.status === "done" && l.path !== "preexisting").length,
      preexisting: report.layers.filter((l) => l.status === "done" && l.path === "preexisting").length,
      failed: report.layers.filter((l) => l.status === "failed").length,
      bytesHashed: bytes,
      seconds: Number(seconds.toFixed(3)),
    },
    layers: report.layers,
    ignored: report.ignored,
  }
}

const humanSummary = (report: ChecksumsReport, progress: Progress): string => {
  const { bytes, seconds } = progress.totals
  const done = report.layers.filter((l) => l.status === "done")
  const preexisting = done.filter((l) => l.path === "preexisting").length
  const failed = report.layers.length - done.length
  const rate = seconds > 0 ? (bytes / 1e6 / seconds).toFixed(0) : "0"
  return `checksums: ${done.length - preexisting} computed, ${preexisting} already present, ${failed} failed ` +
    `(${report.layers.length} layers, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s, ${rate} MB/s)`
}
