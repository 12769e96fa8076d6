/**
 * Entry point of a CRC lane thread: checksums the big files its layer worker
 * hands over (see `CrcLane.ts`). Runs until terminated.
 *
 * @module
 */
import { runCrcLaneConsumer } from "../crc/CrcLane.ts"
import { makeCrc64Engine } from "../crc/Crc64Engine.ts"

declare const self: { onmessage: ((event: MessageEvent<SharedArrayBuffer>) => void) | null }

self.onmessage = (event) => {
  const engine = makeCrc64Engine()
  runCrcLaneConsumer(event.data, { update: (crc, data) => engine.updateBytes(crc, data) })
}
