/**
 * The conformance kit every storage driver plugin passes: it lists its
 * layers, says which exist, shows each layer's files (read-only) through a
 * scoped view, those files make the same regenerated tar as a reference, it
 * changes nothing in its storage, and it leaves nothing mounted after
 * success, after an error and after an interruption.
 *
 * Run it from a test (with reference trees) or with
 * `cas-migrator plugin-test --plugin FILE --graph ROOT` (without).
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import process from "node:process"
import * as path from "node:path"
import { Buffer } from "node:buffer"
import { Effect, Exit, Fiber, type Layer } from "effect"
import { compareBytes } from "../../src/Bytes.ts"
import { makeCrc64Engine } from "../../src/crc/Crc64Engine.ts"
import type { GraphId } from "../../src/Ids.ts"
import { listGraph, readParent } from "../../src/legacy/LegacyGraph.ts"
import { type FileStat, rawFiles } from "../../src/platform/RawFiles.ts"
import { regenerateLayer } from "../../src/tar/RegenerateLayer.ts"
import { type DriverError, StorageDriver } from "../../src/driver/StorageDriver.ts"

export interface ConformanceOptions {
  /** The plugin's layer for this Docker root. */
  readonly driver: Layer.Layer<StorageDriver, DriverError>
  /** The Docker root (its `graph/` says which layers to expect). */
  readonly graphRoot: string
  /** Where the driver keeps its data: nothing under it may change. */
  readonly storage: string
  /** Optional: for some layers, a directory holding exactly what their view must show. */
  readonly reference?: ReadonlyMap<GraphId, string> | undefined
}

export interface CheckResult {
  readonly check: string
  readonly ok: boolean
  readonly detail: string
}

/** Visits every entry under `root`, depth first in byte order of names, with its path (latin1) from `root`. */
const walkTree = (root: string, visit: (key: string, full: Uint8Array, stat: FileStat) => void) => {
  const walk = (dir: Uint8Array, relative: string) => {
    for (const name of rawFiles.readdir(dir).sort(compareBytes)) {
      const full = new Uint8Array(Buffer.concat([dir, Buffer.from("/"), name]))
      const stat = rawFiles.lstat(full)
      if (stat === undefined) continue
      const key = relative + Buffer.from(name).toString("latin1")
      visit(key, full, stat)
      if (stat.kind === "directory") walk(full, key + "/")
    }
  }
  walk(new TextEncoder().encode(root), "")
}

/** A listing of a tree: type, mode, owner, size, whole-second mtime, content hash, link target; by byte name. */
export const describeTree = (root: string): Map<string, string> => {
  const out = new Map<string, string>()
  walkTree(root, (key, full, stat) => {
    let content = ""
    if (stat.kind === "file") {
      const hash = createHash("sha256")
      const handle = rawFiles.openNoFollow(full)
      const buffer = new Uint8Array(1 << 16)
      for (let n = handle.read(buffer, 0, buffer.length); n > 0; n = handle.read(buffer, 0, buffer.length)) hash.update(buffer.subarray(0, n))
      handle.close()
      content = hash.digest("hex").slice(0, 16)
    }
    if (stat.kind === "symlink") content = Buffer.from(rawFiles.readlink(full)).toString("latin1")
    const seconds = stat.kind === "directory" ? "" : String(stat.mtimeNs / 1_000_000_000n)
    out.set(key, `${stat.mode.toString(8)} ${stat.uid}:${stat.gid} ${stat.kind === "directory" ? "" : stat.size} ${seconds} ${stat.rdev} ${content}`)
  })
  return out
}

const mounts = () => new Set(fs.readFileSync("/proc/mounts", "utf8").split("\n").filter((line) => line !== ""))

/**
 * Everything under `dir` with what any write changes (size, mtime, ctime) and no content read: a
 * pool's data file may be a sparse 100 GB.
 */
const storageState = (dir: string) => {
  const lines: Array<string> = []
  walkTree(dir, (key, _full, stat) => {
    lines.push(`${key} ${stat.mode.toString(8)} ${stat.uid}:${stat.gid} ${stat.size} ${stat.mtimeNs} ${stat.ctimeNs}`)
  })
  return lines.join("\n")
}

const engine = makeCrc64Engine()

/**
 * The diffID a fallback regeneration gives over `root` (whiteout times aside, deterministic). Its
 * tar-split goes to a directory in `scratch` (the Docker root's `tmp`), removed at once.
 */
const regenerated = (scratch: string, root: string, parentRoot: string | undefined, layerFiles: "aufs-diff" | "snapshot") => {
  fs.mkdirSync(scratch, { recursive: true })
  const dir = fs.mkdtempSync(path.join(scratch, `cas-migrator-conformance-${process.pid}-`))
  try {
    return regenerateLayer({ root, parentRoot, layerFiles, tarDataOut: path.join(dir, "tar-split.gz"), whiteoutTimeNs: 0n }, engine, () => {}).sha256
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs every check; never throws for a failing plugin (the failures are in the results). */
export const runConformance = async (options: ConformanceOptions): Promise<Array<CheckResult>> => {
  const results: Array<CheckResult> = []
  const record = (check: string, ok: boolean, detail = "") => results.push({ check, ok, detail })
  const scratch = path.join(options.graphRoot, "tmp")
  const mountsBefore = mounts()
  const storageBefore = storageState(options.storage)
  const { ids } = await Effect.runPromise(listGraph(options.graphRoot))

  const program = Effect.gen(function* () {
    const driver = yield* StorageDriver
    const listed = new Set(yield* driver.layers)
    const missing = ids.filter((id) => !listed.has(id))
    record("lists every layer that has data", missing.length === 0 || listed.size > 0, missing.length === 0 ? "" : `not listed: ${missing.slice(0, 3).join(", ")}`)
    for (const id of listed) {
      if (!(yield* driver.exists(id))) record(`exists(${id.slice(0, 12)})`, false, "listed but exists() says no")
    }
    const absent = "0".repeat(64) as GraphId
    record("exists() is false for an unknown layer", !(yield* driver.exists(absent)))

    // Image layers (those in graph/) are what a migration reads; container layers need not have a view.
    const images = ids.filter((id) => listed.has(id))
    for (const id of images.slice(0, 50)) {
      const tree = yield* Effect.scoped(Effect.map(driver.view(id), (view) => describeTree(view.root)))
      const reference = options.reference?.get(id)
      if (reference !== undefined) {
        const want = describeTree(reference)
        const differing = [...new Set([...tree.keys(), ...want.keys()])].filter((k) => tree.get(k) !== want.get(k))
        record(`view of ${id.slice(0, 12)} shows the reference tree`, differing.length === 0, differing.slice(0, 3).join(", "))
      }
    }

    // Fallback tars, regenerated from the views, against the same from the reference trees.
    if (options.reference !== undefined) {
      for (const [id, reference] of options.reference) {
        if (!images.includes(id)) continue
        const parent = yield* Effect.orElseSucceed(readParent(options.graphRoot, id), () => "")
        const parentId = listed.has(parent as GraphId) ? parent as GraphId : undefined
        const parentReference = parentId === undefined ? undefined : options.reference.get(parentId)
        if (parentId !== undefined && parentReference === undefined) continue
        const fromViews = yield* Effect.scoped(Effect.gen(function* () {
          const view = yield* driver.view(id)
          const parentView = parentId === undefined || driver.layerFiles === "aufs-diff" ? undefined : yield* driver.view(parentId)
          return regenerated(scratch, view.root, parentView?.root, driver.layerFiles)
        }))
        const want = regenerated(scratch, reference, driver.layerFiles === "aufs-diff" ? undefined : parentReference, driver.layerFiles)
        record(`fallback tar of ${parentId === undefined ? "a base" : "a child"} (${id.slice(0, 12)}) equals the reference's`, fromViews === want)
      }
    }

    const failed = yield* Effect.exit(Effect.scoped(driver.view(absent)))
    record("view() of an unknown layer fails with a DriverError", Exit.isFailure(failed))
    const someLayer = images[0]
    if (someLayer !== undefined) {
      const opened = yield* Effect.forkChild(Effect.scoped(Effect.andThen(driver.view(someLayer), Effect.never)))
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(opened)
    }
  })

  const exit = await Effect.runPromiseExit(program.pipe(Effect.provide(options.driver)))
  if (Exit.isFailure(exit)) record("the plugin runs without failing", false, String(exit.cause))
  const leftMounted = [...mounts()].filter((line) => !mountsBefore.has(line))
  record("nothing stays mounted (after success, an error and an interruption)", leftMounted.length === 0, leftMounted.join("; "))
  record("nothing changes in the driver's storage", storageState(options.storage) === storageBefore)
  return results
}
