/**
 * The errno name (`ENOENT`, `EEXIST`, ...) of a failed system call, as
 * Node's APIs attach it to their errors on Bun and Deno.
 *
 * @module
 */

/** `error.code` when it is a string, else `undefined`. */
export const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined

/** An error's message, or what a thrown non-error says of itself. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))
