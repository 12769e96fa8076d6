/**
 * A single-producer, single-consumer ring in shared memory that moves the
 * CRC-64 of big files to a second thread.
 *
 * SHA-256 of a layer is one sequential stream, but the CRC-64 of each file is
 * independent, so a layer worker (the producer) reads a chunk into a ring
 * slot, hashes it and publishes it; its lane thread (the consumer) checksums
 * the slot and compares each finished file with tar-split's CRC. Even a single
 * huge layer then keeps two cores busy. Slots are recycled: memory is fixed.
 *
 * @module
 */

/** Slots in the ring and bytes per slot. */
export const LANE_SLOTS = 8
export const LANE_SLOT_BYTES = 1 << 20

// Header (Int32 indexes): sequence numbers and the first mismatching file.
const WRITTEN = 0
const READ = 1
const MISMATCH = 2
const STOPPED = 3
const HEADER_INTS = 16
// Per-slot metadata (Int32 indexes within the slot's record).
const META_INTS = 8
const FILE = 0
const LENGTH = 1
const FLAGS = 2
const EXPECTED_HI = 3
const EXPECTED_LO = 4
const LAST = 1
const EXPECTED_VALID = 2

const NO_MISMATCH = -1

const metaOffset = HEADER_INTS * 4
const dataOffset = metaOffset + LANE_SLOTS * META_INTS * 4

/** Allocates the shared memory of one lane. */
export const makeLaneMemory = (): SharedArrayBuffer => {
  const memory = new SharedArrayBuffer(dataOffset + LANE_SLOTS * LANE_SLOT_BYTES)
  new Int32Array(memory, 0, HEADER_INTS)[MISMATCH] = NO_MISMATCH
  return memory
}

/** Lane stopped while a layer was using it (the pool is closing). */
export class LaneStopped extends Error {
  override readonly name = "LaneStopped"
}

/**
 * Stops both sides: wakes whichever thread waits so that it can return (a
 * thread blocked in `Atomics.wait` cannot always be terminated from outside).
 */
export const stopLane = (memory: SharedArrayBuffer): void => {
  const header = new Int32Array(memory, 0, HEADER_INTS)
  Atomics.store(header, STOPPED, 1)
  Atomics.notify(header, WRITTEN)
  Atomics.notify(header, READ)
}

const slotData = (memory: SharedArrayBuffer, slot: number): Uint8Array =>
  new Uint8Array(memory, dataOffset + slot * LANE_SLOT_BYTES, LANE_SLOT_BYTES)

/** The layer worker's side. */
export class CrcLaneProducer {
  private readonly header: Int32Array
  private readonly meta: Int32Array
  private readonly slots: ReadonlyArray<Uint8Array>
  private written = 0

  constructor(memory: SharedArrayBuffer) {
    this.header = new Int32Array(memory, 0, HEADER_INTS)
    this.meta = new Int32Array(memory, metaOffset, LANE_SLOTS * META_INTS)
    this.slots = Array.from({ length: LANE_SLOTS }, (_, slot) => slotData(memory, slot))
    this.written = Atomics.load(this.header, WRITTEN)
  }

  /** The next free slot to read file data into; waits while the lane is full. */
  nextSlot(): Uint8Array {
    for (;;) {
      const read = Atomics.load(this.header, READ)
      if (this.written - read < LANE_SLOTS) return this.slots[this.written % LANE_SLOTS]!
      if (Atomics.load(this.header, STOPPED)) throw new LaneStopped("CRC lane stopped")
      Atomics.wait(this.header, READ, read)
    }
  }

  /** Hands the slot from `nextSlot` to the lane: `length` bytes of file `file`; the last chunk carries the expected CRC. */
  publish(file: number, length: number, expected: Uint8Array | null | "more"): void {
    const base = (this.written % LANE_SLOTS) * META_INTS
    this.meta[base + FILE] = file
    this.meta[base + LENGTH] = length
    if (expected === "more") {
      this.meta[base + FLAGS] = 0
    } else {
      const valid = expected !== null && expected.length === 8
      this.meta[base + FLAGS] = LAST | (valid ? EXPECTED_VALID : 0)
      if (valid) {
        const view = new DataView(expected.buffer, expected.byteOffset, 8)
        this.meta[base + EXPECTED_HI] = view.getInt32(0)
        this.meta[base + EXPECTED_LO] = view.getInt32(4)
      }
    }
    this.written++
    Atomics.store(this.header, WRITTEN, this.written)
    Atomics.notify(this.header, WRITTEN)
  }

  /** The first file whose CRC did not match so far, without waiting; -1 if none. */
  peekMismatch(): number {
    return Atomics.load(this.header, MISMATCH)
  }

  /** Waits until every published slot is checked; returns the first mismatching file (or -1) and clears it. */
  drain(): number {
    for (;;) {
      const read = Atomics.load(this.header, READ)
      if (read === this.written) break
      if (Atomics.load(this.header, STOPPED)) throw new LaneStopped("CRC lane stopped")
      Atomics.wait(this.header, READ, read)
    }
    return Atomics.exchange(this.header, MISMATCH, NO_MISMATCH)
  }
}

/** What the lane thread needs to checksum a slot. */
export interface LaneChecksum {
  update(crc: bigint, data: Uint8Array): bigint
}

/** The lane thread's loop: checksums published slots until `stopLane`. */
export const runCrcLaneConsumer = (memory: SharedArrayBuffer, checksum: LaneChecksum): void => {
  const header = new Int32Array(memory, 0, HEADER_INTS)
  const meta = new Int32Array(memory, metaOffset, LANE_SLOTS * META_INTS)
  const slots = Array.from({ length: LANE_SLOTS }, (_, slot) => slotData(memory, slot))
  let read = Atomics.load(header, READ)
  let file = -1
  let crc = 0n
  for (;;) {
    const written = Atomics.load(header, WRITTEN)
    if (written === read) {
      if (Atomics.load(header, STOPPED)) return
      Atomics.wait(header, WRITTEN, written)
      continue
    }
    const slot = read % LANE_SLOTS
    const base = slot * META_INTS
    if (meta[base + FILE] !== file) {
      file = meta[base + FILE]!
      crc = 0n
    }
    crc = checksum.update(crc, slots[slot]!.subarray(0, meta[base + LENGTH]!))
    const flags = meta[base + FLAGS]!
    if (flags & LAST) {
      const expected = (BigInt(meta[base + EXPECTED_HI]! >>> 0) << 32n) | BigInt(meta[base + EXPECTED_LO]! >>> 0)
      if (!(flags & EXPECTED_VALID) || expected !== crc) Atomics.compareExchange(header, MISMATCH, NO_MISMATCH, file)
      file = -1
    }
    read++
    Atomics.store(header, READ, read)
    Atomics.notify(header, READ)
  }
}
