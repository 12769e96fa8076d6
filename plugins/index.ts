/**
 * The built-in storage driver plugins, by the name `--storage-driver` takes.
 *
 * @module
 */
import type { Layer } from "effect"
import type { StorageDriver } from "../src/StorageDriver.ts"
import * as aufs from "./aufs.ts"
import * as btrfs from "./btrfs.ts"
import * as overlay from "./overlay.ts"
import * as vfs from "./vfs.ts"

/** A plugin: given the Docker root, a layer providing the `StorageDriver` service. */
export type DriverPlugin = (graphRoot: string) => Layer.Layer<StorageDriver>

export const builtinDrivers: Readonly<Record<string, DriverPlugin>> = {
  aufs: aufs.layer,
  overlay: overlay.layer,
  btrfs: btrfs.layer,
  vfs: vfs.layer,
}
