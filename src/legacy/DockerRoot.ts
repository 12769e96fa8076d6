/**
 * The Docker root the user points at, checked before any work: it must be a
 * directory, and the storage driver is the one given or the one Docker 1.9
 * would have chosen from the state it finds there.
 *
 * @module
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { errorText } from "./LegacyGraph.ts"

/** The root cannot be used at all (exit code 2). */
export class RootError extends Schema.TaggedError<RootError>()("RootError", {
  root: Schema.String,
  reason: Schema.Literals(["Missing", "NoDriver", "AmbiguousDriver", "UnknownDriver"]),
  detail: Schema.String,
}) {
  override get message(): string {
    return `Cannot use Docker root ${this.root}: ${this.detail}`
  }
}

/** Checks that `root` is a directory. */
export const checkRoot = (root: string): Effect.Effect<void, RootError> =>
  Effect.tryPromise({
    try: () => fs.stat(root),
    catch: (error) => new RootError({ root, reason: "Missing", detail: errorText(error) }),
  }).pipe(Effect.flatMap((stat) =>
    stat.isDirectory() ? Effect.void : Effect.fail(new RootError({ root, reason: "Missing", detail: "not a directory" }))
  ))

const present = (root: string, name: string) =>
  Effect.promise(() => fs.stat(path.join(root, name)).then((stat) => stat.isDirectory(), () => false))

/**
 * The driver to read: `requested` if given (its directory must exist), else
 * the one whose directory is in the root, as Docker 1.9 picked its prior
 * driver: `vfs` state does not count when another driver's is there, and two
 * others are ambiguous (the error lists them).
 */
export const chooseDriver = (
  root: string,
  known: ReadonlyArray<string>,
  requested: string | undefined,
): Effect.Effect<string, RootError> =>
  Effect.gen(function* () {
    if (requested !== undefined) {
      if (!known.includes(requested)) {
        return yield* new RootError({
          root,
          reason: "UnknownDriver",
          detail: `unknown storage driver ${requested} (known: ${known.join(", ")})`,
        })
      }
      if (!(yield* present(root, requested))) {
        return yield* new RootError({
          root,
          reason: "NoDriver",
          detail: `no ${requested} directory at ${path.join(root, requested)}`,
        })
      }
      return requested
    }
    const found = yield* Effect.filter(known, (name) => present(root, name))
    const candidates = found.length > 1 ? found.filter((name) => name !== "vfs") : found
    if (candidates.length === 1) return candidates[0]!
    if (candidates.length === 0) {
      return yield* new RootError({
        root,
        reason: "NoDriver",
        detail: `no storage driver directory found (looked for ${known.join(", ")})`,
      })
    }
    return yield* new RootError({
      root,
      reason: "AmbiguousDriver",
      detail: `it holds the state of several storage drivers (${found.join(", ")}); choose one with --storage-driver`,
    })
  })
