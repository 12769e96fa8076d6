/**
 * The C library opened through the runtime's FFI, for the calls neither Bun
 * nor Deno offers (xattrs, mknod, syncfs): glibc first, then musl (the musl
 * build of the binary).
 *
 * @module
 */

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"]

/** `open` applied to the first C library that loads; `purpose` names the call in the error when none does. */
export const openLibc = <A>(open: (name: string) => A, purpose?: string): A => {
  let last: unknown
  for (const name of LIBC_NAMES) {
    try {
      return open(name)
    } catch (error) {
      last = error
    }
  }
  throw new Error(`Cannot load the C library${purpose === undefined ? "" : ` for ${purpose}`}: ${String(last)}`)
}
