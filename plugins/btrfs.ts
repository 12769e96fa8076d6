/**
 * btrfs: each layer is a subvolume (a snapshot of its parent's) at
 * `btrfs/subvolumes/<id>`, holding the full root filesystem; readable as a
 * directory, nothing to mount.
 *
 * @module
 */
import { directoryDriver } from "../src/driver/DirectoryDriver.ts"

export const layer = (graphRoot: string) =>
  directoryDriver({
    name: "btrfs",
    layerFiles: "snapshot",
    home: "btrfs",
    listing: "subvolumes",
    files: (id) => `subvolumes/${id}`,
    marker: (id) => `subvolumes/${id}`,
  }, graphRoot)
