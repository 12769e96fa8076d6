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

/** Errors of the file system written to (full, read-only, failing): a re-run after the admin mends it succeeds. */
export const WRITE_ERROR_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS", "EMFILE", "ENFILE", "ENOMEM"])

/** Whether a failure (an error, or the text a worker sent back) was one of `WRITE_ERROR_CODES`. */
export const isWriteError = (error: unknown): boolean => {
  const code = errorCode(error)
  if (code !== undefined) return WRITE_ERROR_CODES.has(code)
  const text = typeof error === "string" ? error : errorMessage(error)
  return /\b(ENOSPC|EDQUOT|EIO|EROFS|EMFILE|ENFILE|ENOMEM)\b|no space left on device|read-only file system/i.test(text)
}
