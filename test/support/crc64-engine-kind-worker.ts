/**
 * Worker for test/Crc64Native.test.ts: which engine `makeCrc64Engine` gives
 * inside a worker thread (where the layer workers make theirs), and the check
 * value through it.
 *
 * @module
 */
import { makeCrc64Engine } from "../../src/crc/Crc64Engine.ts"
import { nativeCrc64Unavailable } from "../../src/crc/Crc64Native.ts"

declare const self: { postMessage(message: { kind: string; crc: string; why: string | undefined }): void }

const engine = makeCrc64Engine(16)
engine.buffer.set(new TextEncoder().encode("123456789"))
self.postMessage({ kind: engine.kind, crc: engine.update(0n, 9).toString(16), why: nativeCrc64Unavailable() })
