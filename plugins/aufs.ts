/**
 * aufs: each layer's own diff in `aufs/diff/<id>` (whiteouts are `.wh.*`
 * files); `aufs/layers/<id>` lists its ancestors and is what `Exists` checks.
 *
 * @module
 */
import { directoryDriver } from "../src/driver/DirectoryDriver.ts"

export const layer = (graphRoot: string) =>
  directoryDriver({
    name: "aufs",
    layerFiles: "aufs-diff",
    home: "aufs",
    listing: "diff",
    files: (id) => `diff/${id}`,
    marker: (id) => `layers/${id}`,
  }, graphRoot)
