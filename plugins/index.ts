/**
 * The built-in storage driver plugins, by the name `--storage-driver` takes.
 *
 * @module
 */
import type { Layer } from "effect"
import type { DriverError, StorageDriver } from "../src/driver/StorageDriver.ts"
import * as aufs from "./aufs.ts"
import * as btrfs from "./btrfs.ts"
import * as devicemapper from "./devicemapper.ts"
import * as overlay from "./overlay.ts"
import * as overlay2 from "./overlay2.ts"
import * as vfs from "./vfs.ts"
import * as zfs from "./zfs.ts"

/**
 * A plugin: given the Docker root and the `--storage-opt key=value` options,
 * a layer providing the `StorageDriver` service.
 */
export type DriverPlugin = (
  graphRoot: string,
  options: ReadonlyMap<string, string>,
) => Layer.Layer<StorageDriver, DriverError>

export const builtinDrivers: Readonly<Record<string, DriverPlugin>> = {
  aufs: aufs.layer,
  overlay: overlay.layer,
  btrfs: btrfs.layer,
  zfs: zfs.layer,
  devicemapper: devicemapper.layer,
  vfs: vfs.layer,
}

/** Drivers of Docker 1.10+ stores, by the name in `image/<name>/` (for `verify`): the legacy ones and overlay2. */
export const storeDrivers: Readonly<Record<string, DriverPlugin>> = { ...builtinDrivers, overlay2: overlay2.layer }
