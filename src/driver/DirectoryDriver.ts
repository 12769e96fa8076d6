/**
 * What the drivers that keep each layer as a plain directory share: the
 * layer's files are `<driver root>/<layerDirectory(id)>`, nothing to mount.
 * aufs, overlay, vfs and btrfs are this with a different path.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { type GraphId, parseGraphId } from "../Ids.ts"
import type { LayerFiles } from "../tar/RegenerateLayer.ts"
import { errorCode } from "../platform/ErrorCode.ts"
import { DriverError, StorageDriver } from "./StorageDriver.ts"

export interface DirectoryLayout {
  readonly name: string
  readonly layerFiles: LayerFiles
  /** Directory under the Docker root that holds the driver's data (`aufs`, `vfs`, ...). */
  readonly home: string
  /** Directory, relative to `home`, whose entries are the layer IDs. */
  readonly listing: string
  /** Directory, relative to `home`, of a layer's files. */
  readonly files: (id: GraphId) => string
  /** Path, relative to `home`, whose presence is Docker's `Exists(id)`. */
  readonly marker: (id: GraphId) => string
  /** Where a container layer's own changes are, when the driver keeps them apart (see `StorageDriver`). */
  readonly containerUpper?: ((id: string) => string) | undefined
}

/** A `StorageDriver` layer for a directory layout under the Docker root `graphRoot`. */
export const directoryDriver = (layout: DirectoryLayout, graphRoot: string): Layer.Layer<StorageDriver> => {
  const home = path.join(graphRoot, layout.home)
  const failure = (reason: DriverError["reason"], detail: string, layer?: GraphId) =>
    new DriverError({ driver: layout.name, reason, detail, ...(layer === undefined ? {} : { layer }) })

  const present = (target: string, id: GraphId) =>
    Effect.tryPromise({
      try: () => fs.lstat(target).then(() => true),
      catch: (error) => error,
    }).pipe(
      Effect.catch((error) =>
        isNotFound(error)
          ? Effect.succeed(false)
          : Effect.fail(failure("Unreadable", `${target}: ${describe(error)}`, id))
      ),
    )

  return Layer.succeed(StorageDriver, {
    name: layout.name,
    layerFiles: layout.layerFiles,
    layers: Effect.tryPromise({
      try: () => fs.readdir(path.join(home, layout.listing)),
      catch: (error) => failure("Unreadable", `${path.join(home, layout.listing)}: ${describe(error)}`),
    }).pipe(
      Effect.map((names) => names.flatMap((name) => parseGraphId(name) ?? []).sort()),
    ),
    exists: (id) => present(path.join(home, layout.marker(id)), id),
    view: (id) => {
      const root = path.join(home, layout.files(id))
      return Effect.flatMap(present(root, id), (found) =>
        found ? Effect.succeed({ root }) : Effect.fail(failure("NotFound", `${root} does not exist`, id)))
    },
    containerUpper: layout.containerUpper === undefined ? undefined : (id) => {
      const upper = path.join(home, layout.containerUpper!(id))
      const layerDir = path.dirname(upper)
      return Effect.flatMap(present(upper, id as GraphId), (found) =>
        found
          ? Effect.succeed(upper)
          // A layer directory without changes has no upper directory.
          : Effect.flatMap(present(layerDir, id as GraphId), (layerThere) =>
            layerThere ? Effect.succeed(undefined) : Effect.fail(failure("NotFound", `${layerDir} does not exist`, id as GraphId))))
    },
  })
}

const isNotFound = (error: unknown): boolean => errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR"

const describe = (error: unknown): string => errorCode(error) ?? String(error)
