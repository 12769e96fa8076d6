/**
 * The gathering of a layer's tar into fewer writes (`export`'s output): for
 * any cut of any stream, the writes put together are the stream, byte for
 * byte and in order; small pieces are gathered, large ones are not copied.
 */
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { test } from "node:test"
import fc from "fast-check"
import { GatheredWrites } from "../src/hash/GatheredWrites.ts"

/** Writes `pieces` through a GatheredWrites of `capacity`; returns the puts, copied. */
const gather = (pieces: ReadonlyArray<Uint8Array>, capacity: number): Array<Uint8Array> => {
  const puts: Array<Uint8Array> = []
  const writes = new GatheredWrites((bytes) => puts.push(bytes.slice()), capacity)
  const reused = new Uint8Array(4 * capacity)
  for (const piece of pieces) {
    // The caller reuses its array, as the assembler does: the piece is overwritten after the call.
    const view = reused.subarray(0, piece.length)
    view.set(piece)
    writes.write(view)
    view.fill(0xee)
  }
  writes.flush()
  return puts
}

test("the writes put together are the stream, in order, however it is cut (piece sizes around the capacity and its half)", () => {
  const capacity = 64
  const piece = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 8 }),
    fc.uint8Array({ minLength: capacity / 2 - 2, maxLength: capacity / 2 + 2 }),
    fc.uint8Array({ minLength: capacity - 2, maxLength: 3 * capacity }),
  )
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => {
      const puts = gather(pieces, capacity)
      assert.deepEqual(Buffer.concat(puts), Buffer.concat(pieces))
      for (const put of puts) assert.ok(put.length > 0, "no empty write")
    }),
    { numRuns: 2000 },
  )
})

test("small pieces are gathered into one write; a large one follows what was gathered, uncopied", () => {
  const seen: Array<Uint8Array> = []
  const writes = new GatheredWrites((bytes) => seen.push(bytes), 16)
  const large = new Uint8Array(8).fill(9)
  writes.write(new Uint8Array([1, 2]))
  writes.write(new Uint8Array([3]))
  writes.write(large)
  writes.flush()
  assert.deepEqual(seen.map((bytes) => [...bytes]), [[1, 2, 3], [9, 9, 9, 9, 9, 9, 9, 9]])
  assert.equal(seen[1], large, "the large piece is passed as it is")
})
