/**
 * Writing the three helper files the 1.10 daemon reads instead of hashing a
 * layer, with Docker's names, contents and modes, and crash-safe:
 * `.migration-tardata` and `.migration-size` first, `.migration-diffid` last
 * (the commit marker: a layer that has it is done). Each file is written to
 * `<name>.tmp` and renamed, so no reader ever sees half a file.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import { Effect, Schema } from "effect"
import type { DiffID } from "../Ids.ts"
import { errorText, type graphPaths } from "./LegacyGraph.ts"

/** A helper file could not be written. */
export class HelperFileError extends Schema.TaggedError<HelperFileError>()("HelperFileError", {
  layer: Schema.String,
  path: Schema.String,
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot write ${this.path}: ${this.detail}`
  }
}

type Paths = ReturnType<typeof graphPaths>

const TMP = ".tmp"
/** Docker wrote these with `ioutil.WriteFile(..., 0600)` (the umask applies, as it did for Docker). */
const HELPER_MODE = 0o600

/**
 * Where `.migration-tardata` comes from: a hard link of the pulled tar-split
 * file (the tar-split path, as Docker made it), or the metadata recorded while
 * regenerating, already written to `temporaryTarData(paths)` (the fallback).
 */
export type TarDataSource = { readonly kind: "link"; readonly from: string } | { readonly kind: "written" }

/** Where the fallback writes `.migration-tardata` before it is renamed into place. */
export const temporaryTarData = (paths: Paths): string => paths.migrationTarData + TMP

/** Removes leftovers of a run killed mid-write; they hold nothing a re-run needs. */
export const clearTemporaries = (layer: string, paths: Paths): Effect.Effect<void, HelperFileError> =>
  Effect.tryPromise({
    try: async () => {
      for (const file of [paths.migrationTarData, paths.size, paths.diffId]) await fs.rm(file + TMP, { force: true })
    },
    catch: (error) => new HelperFileError({ layer, path: paths.dir, detail: errorText(error) }),
  })

/** Writes `.migration-tardata`, `.migration-size`, then `.migration-diffid`. */
export const writeHelperFiles = (
  layer: string,
  paths: Paths,
  result: { readonly diffId: DiffID; readonly size: number; readonly tarData: TarDataSource },
): Effect.Effect<void, HelperFileError> =>
  Effect.tryPromise({
    try: async () => {
      if (result.tarData.kind === "link") await linkAtomically(result.tarData.from, paths.migrationTarData)
      else await at(paths.migrationTarData, () => fs.rename(temporaryTarData(paths), paths.migrationTarData))
      await writeAtomically(paths.size, String(result.size), false)
      await writeAtomically(paths.diffId, result.diffId, true)
    },
    catch: (error) =>
      new HelperFileError({
        layer,
        path: error instanceof PathError ? error.path : paths.dir,
        detail: errorText(error instanceof PathError ? error.cause : error),
      }),
  })

class PathError extends Error {
  constructor(readonly path: string, override readonly cause: unknown) {
    super(`${path}: ${errorText(cause)}`)
  }
}

const at = async <A>(path: string, action: () => Promise<A>): Promise<A> => {
  try {
    return await action()
  } catch (error) {
    throw new PathError(path, error)
  }
}

const writeAtomically = async (target: string, content: string, durable: boolean) => {
  const temporary = target + TMP
  await at(temporary, async () => {
    const file = await fs.open(temporary, "w", HELPER_MODE)
    try {
      await file.writeFile(content)
      if (durable) await file.sync()
    } finally {
      await file.close()
    }
  })
  await at(target, () => fs.rename(temporary, target))
}

const linkAtomically = async (source: string, target: string) => {
  const temporary = target + TMP
  await at(temporary, () => fs.link(source, temporary))
  await at(target, () => fs.rename(temporary, target))
  // rename() between two links of one inode does nothing and leaves both names.
  await fs.rm(temporary, { force: true })
}
