/**
 * zfs: one dataset per layer, `<base>/<id>` (a child is a clone of a snapshot
 * of its parent's), each holding the layer's whole root. The base dataset is
 * `--storage-opt zfs.fsname=<dataset>`, or else the ZFS dataset mounted on
 * the Docker root, as Docker's driver found it. A layer is read by mounting
 * its dataset read-only (`mount -t zfs -o ro`) on a directory of our own (in
 * `<root>/tmp`) for the view's scope only: the finaliser unmounts it whatever
 * happens.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { type GraphId, parseGraphId } from "../src/Ids.ts"
import { unmount } from "../src/platform/Mounts.ts"
import { runCommand } from "../src/platform/RunCommand.ts"
import { DriverError, StorageDriver } from "../src/driver/StorageDriver.ts"
import { sharedByKey } from "./SharedByKey.ts"
import { scratchPrefix, sweepStaleScratch } from "./StaleScratch.ts"

const failure = (reason: DriverError["reason"], detail: string, layer?: string) =>
  new DriverError({ driver: "zfs", reason, detail, ...(layer === undefined ? {} : { layer }) })

/** The ZFS dataset mounted on `root` (Docker's default when no `zfs.fsname` is given). */
const datasetMountedOn = async (root: string): Promise<string | undefined> => {
  const mounts = await fs.readFile("/proc/mounts", "utf8").catch(() => "")
  const resolved = path.resolve(root)
  for (const line of mounts.split("\n")) {
    const [source, target, type] = line.split(" ")
    if (target === resolved && (type === "zfs" || type === "fuse.zfs") && source !== undefined) return source
  }
  return undefined
}

export const layer = (graphRoot: string, options: ReadonlyMap<string, string> = new Map()) =>
  Layer.effect(
    StorageDriver,
    Effect.gen(function* () {
      const base = options.get("zfs.fsname") ??
        (yield* Effect.promise(() => datasetMountedOn(graphRoot))) ??
        (yield* Effect.fail(failure("NotFound", `no ZFS dataset is mounted on ${graphRoot}; give --storage-opt zfs.fsname=<dataset>`)))
      const datasets = yield* Effect.tryPromise({
        try: () => runCommand("zfs", ["list", "-H", "-o", "name", "-t", "filesystem", "-r", base]),
        catch: (error) => failure("Unreadable", `cannot list the datasets under ${base}: ${String(error)}`),
      }).pipe(Effect.map((out) => new Set(out.split("\n").filter((name) => name.startsWith(`${base}/`)).map((name) => name.slice(base.length + 1)))))

      // Mounts and unmounts one at a time: cheap next to hashing, and zfs-fuse hangs on concurrent ones.
      let pending: Promise<unknown> = Promise.resolve()
      const oneAtATime = <A>(operation: () => Promise<A>): Promise<A> => {
        const result = pending.then(operation, operation)
        pending = result.catch(() => undefined)
        return result
      }
      // Mount points under Docker's TMPDIR, inside the Docker root.
      const scratch = path.join(graphRoot, "tmp")
      const swept = yield* Effect.promise(() => sweepStaleScratch(scratch))
      if (swept.length > 0) yield* Effect.logInfo(`zfs: removed what killed runs left in ${scratch}: ${swept.join(", ")}`)
      const mountDataset = (id: GraphId) => oneAtATime(async () => {
        await fs.mkdir(scratch, { recursive: true })
        const dir = await fs.mkdtemp(scratchPrefix(scratch, "zfs", id.slice(0, 12)))
        try {
          await runCommand("mount", ["-t", "zfs", "-o", "ro", `${base}/${id}`, dir])
        } catch (error) {
          await fs.rmdir(dir).catch(() => undefined)
          throw error
        }
        return dir
      })
      const unmountDataset = (dir: string) => oneAtATime(async () => {
        await unmount(dir).catch(() => undefined)
        await fs.rmdir(dir).catch(() => undefined)
      })
      // One mount per dataset, shared by every view open on it.
      const mounts = sharedByKey(mountDataset, unmountDataset)

      return {
        name: "zfs",
        layerFiles: "snapshot",
        layers: Effect.succeed([...datasets].flatMap((name) => parseGraphId(name) ?? []).sort()),
        exists: (id) => Effect.succeed(datasets.has(id)),
        view: (id) =>
          datasets.has(id)
            ? Effect.map(mounts.scoped(id, (error) => failure("MountFailed", String(error), id)), (root) => ({ root }))
            : Effect.fail(failure("NotFound", `no dataset ${base}/${id}`, id)),
      }
    }),
  )
