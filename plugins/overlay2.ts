/**
 * overlay2 (Docker 1.12+), for reading a 1.10+ store's layer data by cache ID:
 * `overlay2/<cache-id>/diff` holds the layer's own files. Used by `verify`
 * (through tar-split); not a legacy driver, so not chosen for `checksums`.
 *
 * @module
 */
import { directoryDriver } from "../src/driver/DirectoryDriver.ts"

export const layer = (graphRoot: string) =>
  directoryDriver({
    name: "overlay2",
    // Its whiteouts are character devices, read only through tar-split here (never regenerated).
    layerFiles: "aufs-diff",
    home: "overlay2",
    listing: ".",
    files: (id) => `${id}/diff`,
    marker: (id) => `${id}/diff`,
  }, graphRoot)
