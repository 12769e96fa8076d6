/**
 * Storage driver plugins from outside: a module (path given with `--plugin`)
 * that exports `name` and either
 *
 * - `driver(graphRoot, storageOptions)`: plain async operations (`layerFiles`,
 *   `layers()`, `exists(id)`, `open(id)` giving `{ root, close() }`), which
 *   need no import from cas-migrator or Effect, so the compiled binary can
 *   load such a plugin; `close` is called when the view's scope ends, always;
 * - or `layer(graphRoot, storageOptions)`: a layer providing the
 *   `StorageDriver` service (from source, where `effect` resolves).
 *
 * @module
 */
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Layer, Schema } from "effect"
import type { DriverPlugin } from "../../plugins/index.ts"
import { type GraphId, parseGraphId } from "../Ids.ts"
import { DriverError, StorageDriver } from "./StorageDriver.ts"
import { errorMessage } from "../platform/ErrorCode.ts"

/** A plugin module could not be loaded or does not have the expected exports. */
export class PluginError extends Schema.TaggedError<PluginError>()("PluginError", {
  file: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot load storage driver plugin ${this.file}: ${this.detail}`
  }
}

/** Imports `file` and returns its driver by name. */
export const loadPlugin = (file: string): Effect.Effect<readonly [string, DriverPlugin], PluginError> =>
  Effect.tryPromise({
    try: () => import(pathToFileURL(path.resolve(file)).href) as Promise<Record<string, unknown>>,
    catch: (error) => new PluginError({ file, detail: errorMessage(error) }),
  }).pipe(Effect.flatMap((module) => {
    const name = module.name
    const layer = module.layer
    if (typeof name !== "string" || !/^[a-z0-9][a-z0-9_.-]*$/.test(name)) {
      return Effect.fail(new PluginError({ file, detail: "it must export `name`, a lower-case driver name" }))
    }
    if (typeof module.driver === "function") {
      return Effect.succeed([name, plainDriver(name, module.driver as PlainDriverFactory)] as const)
    }
    if (typeof layer !== "function") {
      return Effect.fail(new PluginError({ file, detail: "it must export `driver(graphRoot, storageOptions)` or `layer(graphRoot, storageOptions)`" }))
    }
    return Effect.succeed([name, layer as DriverPlugin] as const)
  }))

/** The plain plugin contract. */
export interface PlainDriver {
  readonly layerFiles: "aufs-diff" | "snapshot"
  layers(): Promise<ReadonlyArray<string>>
  exists(id: string): Promise<boolean>
  open(id: string): Promise<{ readonly root: string; close(): Promise<void> }>
}
type PlainDriverFactory = (graphRoot: string, options: ReadonlyMap<string, string>) => PlainDriver

/** Wraps a plain plugin as a `StorageDriver` layer (its `open` scoped, `close` in the finaliser). */
const plainDriver = (name: string, factory: PlainDriverFactory): DriverPlugin => (graphRoot, options) =>
  Layer.effect(
    StorageDriver,
    Effect.try({
      try: () => factory(graphRoot, options),
      catch: (error) => new DriverError({ driver: name, reason: "Unreadable", detail: errorMessage(error) }),
    }).pipe(Effect.map((plain) => ({
      name,
      layerFiles: plain.layerFiles === "aufs-diff" ? "aufs-diff" as const : "snapshot" as const,
      layers: Effect.tryPromise({
        try: () => plain.layers(),
        catch: (error) => new DriverError({ driver: name, reason: "Unreadable", detail: errorMessage(error) }),
      }).pipe(Effect.map((ids) => ids.flatMap((id) => parseGraphId(id) ?? []))),
      exists: (id: GraphId) =>
        Effect.tryPromise({
          try: () => plain.exists(id),
          catch: (error) => new DriverError({ driver: name, layer: id, reason: "Unreadable", detail: errorMessage(error) }),
        }),
      view: (id: GraphId) =>
        Effect.map(
          Effect.acquireRelease(
            Effect.tryPromise({
              try: () => plain.open(id),
              catch: (error) => new DriverError({ driver: name, layer: id, reason: "NotFound", detail: errorMessage(error) }),
            }),
            (opened) => Effect.promise(() => opened.close().catch(() => undefined)),
          ),
          (opened) => ({ root: opened.root }),
        ),
    }))),
  )

/** The built-in drivers plus the plugins given on the command line. */
export const driversWith = (
  builtin: Readonly<Record<string, DriverPlugin>>,
  files: ReadonlyArray<string>,
): Effect.Effect<Readonly<Record<string, DriverPlugin>>, PluginError> =>
  Effect.map(Effect.forEach(files, loadPlugin), (loaded) => ({ ...builtin, ...Object.fromEntries(loaded) }))
