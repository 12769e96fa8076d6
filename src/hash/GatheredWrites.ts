/**
 * Pieces of a stream, in stream order, passed on as fewer, larger writes:
 * small pieces (tar headers, padding; a hostile tar-split has millions of
 * 3-byte ones) are copied together up to `capacity` bytes, a large piece
 * goes through as it is, after what was gathered before it. The bytes
 * reach `put` exactly in the order they came.
 *
 * @example
 * ```ts
 * const writes = new GatheredWrites((bytes) => writeAllAt(fd, bytes, at += bytes.length), 1 << 20)
 * writes.write(header)
 * writes.write(content)
 * writes.flush()
 * ```
 * @module
 */
export class GatheredWrites {
  private readonly gathered: Uint8Array
  private pending = 0

  /** `put` is given each write in stream order; it may keep nothing past the call (the arrays are reused). */
  constructor(private readonly put: (bytes: Uint8Array) => void, private readonly capacity: number) {
    this.gathered = new Uint8Array(capacity)
  }

  /** Takes the next piece of the stream; the caller may reuse `bytes` once this returns. */
  write(bytes: Uint8Array): void {
    // A piece of half the capacity or more is not copied; what is gathered goes before it.
    if (bytes.length >= this.capacity / 2) {
      this.flush()
      this.put(bytes)
      return
    }
    if (this.pending + bytes.length > this.capacity) this.flush()
    this.gathered.set(bytes, this.pending)
    this.pending += bytes.length
  }

  /** Passes on what is gathered: everything written so far has reached `put` once this returns. */
  flush(): void {
    if (this.pending === 0) return
    const bytes = this.gathered.subarray(0, this.pending)
    this.pending = 0
    this.put(bytes)
  }
}
