/**
 * An example storage driver plugin, loaded only through `--plugin`: "flat"
 * keeps each layer's whole root filesystem in `<root>/flat/<id>.layer/`.
 *
 * It uses the plain plugin contract, which needs no import from
 * cas-migrator or Effect (so the compiled binary can load it): export
 * `name` and `driver(graphRoot, storageOptions)` returning the operations
 * below. (A module may instead export `layer(graphRoot, storageOptions)`, an
 * Effect layer providing the `StorageDriver` service, when run from source.)
 *
 *   cas-migrator checksums --plugin test/plugins/flat.ts --graph ROOT
 *   cas-migrator plugin-test --plugin test/plugins/flat.ts --graph ROOT
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

export const name = "flat"

const SUFFIX = ".layer"
const ID = /^[a-f0-9]{64}$/

export const driver = (graphRoot: string, _options: ReadonlyMap<string, string>) => {
  const home = path.join(graphRoot, name)
  const dirOf = (id: string) => path.join(home, id + SUFFIX)
  const present = (id: string) => fs.stat(dirOf(id)).then((stat) => stat.isDirectory(), () => false)
  return {
    /** A layer's directory holds its whole root filesystem (not only its changes). */
    layerFiles: "snapshot" as const,
    /** The layer IDs that have data. */
    layers: async (): Promise<Array<string>> =>
      (await fs.readdir(home)).filter((n) => n.endsWith(SUFFIX) && ID.test(n.slice(0, -SUFFIX.length)))
        .map((n) => n.slice(0, -SUFFIX.length)).sort(),
    exists: present,
    /** Makes the layer's files readable under `root` until `close` (a mounting driver would mount here). */
    open: async (id: string): Promise<{ root: string; close: () => Promise<void> }> => {
      if (!(await present(id))) throw new Error(`${dirOf(id)} does not exist`)
      return { root: dirOf(id), close: async () => {} }
    },
  }
}
