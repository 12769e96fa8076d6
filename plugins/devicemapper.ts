/**
 * devicemapper: every layer a thin device (ext4 or xfs, files under
 * `rootfs/`) in one thin pool; Docker's JSON in `devicemapper/metadata/<id>`
 * gives its device id and size. A layer's device is reached one of two ways
 * (`--storage-opt dm.access=`):
 *
 * - `dmsetup`: activated read-only on the pool with device-mapper
 *   (devicemapper/DmsetupActivation.ts);
 * - `direct`: built from the pool's files without device-mapper, as a sparse
 *   image (devicemapper/DirectRead.ts);
 * - `auto` (the default): `dmsetup` where the kernel has device-mapper,
 *   `direct` elsewhere.
 *
 * The pool is a loop-lvm pair of files, `devicemapper/devicemapper/{metadata,
 * data}`, or the devices `dm.metadatadev=` and `dm.datadev=`; with `dmsetup`,
 * `dm.thinpooldev=` names an active pool instead. The device is mounted
 * read-only, without journal replay, on a directory under `<root>/tmp` for the
 * view's scope (one mount per layer, shared by the views open on it), and
 * everything is released when the scope closes, also after an error or
 * Ctrl-C. The pool is never written.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { type GraphId, parseGraphId } from "../src/Ids.ts"
import { errorMessage } from "../src/platform/ErrorCode.ts"
import { unmount } from "../src/platform/Mounts.ts"
import { runCommand } from "../src/platform/RunCommand.ts"
import { DriverError, StorageDriver } from "../src/driver/StorageDriver.ts"
import { directRead } from "./devicemapper/DirectRead.ts"
import { deviceMapperAvailable, dmsetupActivation, type PoolSource } from "./devicemapper/DmsetupActivation.ts"
import { readThinDevice } from "./devicemapper/DockerDevices.ts"
import { mountReadOnly } from "./devicemapper/ReadOnlyMount.ts"
import { sharedByKey } from "./SharedByKey.ts"
import { scratchPrefix, sweepStaleScratch } from "./StaleScratch.ts"

const failure = (reason: DriverError["reason"], detail: string, layer?: string) =>
  new DriverError({ driver: "devicemapper", reason, detail, ...(layer === undefined ? {} : { layer }) })

export const ACCESS_WAYS = ["auto", "dmsetup", "direct"] as const

/** The way to the thin devices that `dm.access` asks for and this host allows, or why there is none. */
const chooseAccess = (way: string, pool: PoolSource, scratch: string) =>
  Effect.gen(function* () {
    if (!(ACCESS_WAYS as ReadonlyArray<string>).includes(way)) {
      return yield* Effect.fail(failure("InvalidOption", `dm.access=${way}: expected one of ${ACCESS_WAYS.join(", ")}`))
    }
    const haveDeviceMapper = way === "direct" ? false : yield* Effect.promise(deviceMapperAvailable)
    if (way === "dmsetup" && !haveDeviceMapper) {
      return yield* Effect.fail(failure("InvalidOption", "dm.access=dmsetup: this kernel has no device-mapper (no /dev/mapper/control, or dmsetup cannot reach the driver); dm.access=direct reads the pool without it"))
    }
    if (haveDeviceMapper) return { access: dmsetupActivation(pool), haveDeviceMapper }
    if (pool.thinPoolDevice !== undefined) {
      return yield* Effect.fail(failure("InvalidOption", "dm.thinpooldev needs dm.access=dmsetup and a kernel with device-mapper; give dm.metadatadev and dm.datadev to read the pool directly"))
    }
    if (!(yield* Effect.promise(() => runCommand("thin_dump", ["-V"]).then(() => true, () => false)))) {
      return yield* Effect.fail(failure("Unreadable", "thin_dump is not installed (Debian: thin-provisioning-tools); it reads the pool where there is no device-mapper"))
    }
    return { access: directRead(pool.metadata, pool.data, scratch), haveDeviceMapper }
  })

export const layer = (graphRoot: string, options: ReadonlyMap<string, string> = new Map()) =>
  Layer.effect(
    StorageDriver,
    Effect.gen(function* () {
      const home = path.join(graphRoot, "devicemapper")
      const metadataDir = path.join(home, "metadata")
      // Docker's TMPDIR: scratch space inside the Docker root, beside the output.
      const scratch = path.join(graphRoot, "tmp")
      const pool: PoolSource = {
        home,
        thinPoolDevice: options.get("dm.thinpooldev"),
        metadata: options.get("dm.metadatadev") ?? path.join(home, "devicemapper", "metadata"),
        data: options.get("dm.datadev") ?? path.join(home, "devicemapper", "data"),
      }
      const way = options.get("dm.access") ?? "auto"
      const { access, haveDeviceMapper } = yield* chooseAccess(way, pool, scratch)
      const swept = yield* Effect.promise(() => sweepStaleScratch(scratch))
      if (swept.length > 0) yield* Effect.logInfo(`devicemapper: removed what killed runs left in ${scratch}: ${swept.join(", ")}`)
      const stale = yield* Effect.promise(() => access.sweepStale())
      if (stale.length > 0) yield* Effect.logInfo(`devicemapper: removed what killed runs left: ${stale.join(", ")}`)
      yield* Effect.addFinalizer(() => Effect.promise(() => access.close()))
      yield* Effect.logInfo(
        `devicemapper: thin devices reached through ${access.name}${way === "auto" ? ` (dm.access=auto; device-mapper ${haveDeviceMapper ? "found" : "missing"})` : ""}`,
      )

      const deviceOf = (id: string) => readThinDevice(metadataDir, id)
      // Docker's HasDevice: a layer whose record cannot be read has no device (its view says why).
      const hasDevice = (id: string) => deviceOf(id).then((device) => device !== undefined, () => false)

      const mountLayer = async (id: GraphId) => {
        const device = await deviceOf(id)
        if (device === undefined) throw new Error(`no device for ${id} in ${metadataDir}`)
        const opened = await access.open(device, id.slice(0, 12))
        try {
          await fs.mkdir(scratch, { recursive: true })
          const dir = await fs.mkdtemp(scratchPrefix(scratch, "dm", id.slice(0, 12)))
          try {
            await mountReadOnly(opened.path, opened.isFile, dir)
          } catch (error) {
            await fs.rmdir(dir)
            throw error
          }
          return { dir, release: opened.release }
        } catch (error) {
          await opened.release()
          throw error
        }
      }
      const mounts = sharedByKey(mountLayer, async ({ dir, release }) => {
        await unmount(dir).catch(() => undefined)
        await fs.rmdir(dir).catch(() => undefined)
        await release().catch(() => undefined)
      })

      return {
        name: "devicemapper",
        layerFiles: "snapshot" as const,
        layers: Effect.tryPromise({
          try: async () => {
            const ids: Array<GraphId> = []
            for (const name of await fs.readdir(metadataDir)) {
              const id = parseGraphId(name)
              if (id !== undefined && (await hasDevice(id))) ids.push(id)
            }
            return ids.sort()
          },
          catch: (error) => failure("Unreadable", `${metadataDir}: ${errorMessage(error)}`),
        }),
        exists: (id: GraphId) =>
          Effect.tryPromise({
            try: () => hasDevice(id),
            catch: (error) => failure("Unreadable", errorMessage(error), id),
          }),
        view: (id: GraphId) =>
          mounts.scoped(id, (error) => failure("MountFailed", errorMessage(error), id)).pipe(
            Effect.map(({ dir }) => ({ root: path.join(dir, "rootfs") })),
          ),
      }
    }),
  )
