/**
 * vfs: a full copy of each layer's root filesystem in `vfs/dir/<id>`.
 *
 * @module
 */
import { directoryDriver } from "../src/driver/DirectoryDriver.ts"

export const layer = (graphRoot: string) =>
  directoryDriver({
    name: "vfs",
    layerFiles: "snapshot",
    home: "vfs",
    listing: "dir",
    files: (id) => `dir/${id}`,
    marker: (id) => `dir/${id}`,
  }, graphRoot)
