/**
 * overlay: an image layer's full root filesystem in `overlay/<id>/root`
 * (sharing unchanged inodes with its parent through hard links).
 *
 * @module
 */
import { directoryDriver } from "../src/driver/DirectoryDriver.ts"

export const layer = (graphRoot: string) =>
  directoryDriver({
    name: "overlay",
    layerFiles: "snapshot",
    home: "overlay",
    listing: ".",
    files: (id) => `${id}/root`,
    marker: (id) => id,
    // A container's layers are `upper/` (its changes) over `lower-id`'s root, not a root of their own.
    containerUpper: (id) => `${id}/upper`,
  }, graphRoot)
