/**
 * Entry point of a layer worker thread: reassembles and hashes the layers the
 * pool sends, one at a time, reporting progress and the result; the tar may
 * also be written into a file (`export`) or unpacked into a directory (the
 * overlay2 target).
 *
 * @module
 */
import { CrcLaneProducer } from "../crc/CrcLane.ts"
import { GatheredWrites } from "./GatheredWrites.ts"
import { makeCrc64Engine } from "../crc/Crc64Engine.ts"
import type { FromWorker, HashRequest, JobFailureReason, RegenerateJob, ToWorker, UnpackOutput } from "./HashJob.ts"
import { overlayTarUnpacker } from "../overlay2/OverlayDiffApplier.ts"
import { Buffer } from "node:buffer"
import { LayerRoot } from "../tar/LayerPath.ts"
import { regenerateLayer } from "../tar/RegenerateLayer.ts"
import { AssembleFailure, assembleLayer } from "../tar/TarSplitAssembler.ts"
import { errorMessage } from "../platform/ErrorCode.ts"
import { writeAllAt } from "../platform/WriteAll.ts"
import * as fs from "node:fs"
import type { TarOutput } from "./HashJob.ts"

declare const self: {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null
  postMessage(message: FromWorker): void
}

const engine = makeCrc64Engine()
let lane: CrcLaneProducer | undefined
let idleWorkers: Int32Array | undefined
/** Layers arrive one at a time, but messages are queued so the order is kept even if one arrives early. */
let queue: Promise<void> = Promise.resolve()

self.onmessage = (event) => {
  const message = event.data
  if (message.kind === "init") {
    lane = message.lane === undefined ? undefined : new CrcLaneProducer(message.lane)
    idleWorkers = new Int32Array(message.idleWorkers)
    return
  }
  queue = queue.then(() => (message.kind === "hash" ? hash(message) : regenerate(message)))
}

/** Bytes written between two background flushes of the output. */
const FLUSH_EVERY = 32 << 20
/** Small pieces (segments, headers: a hostile tar-split has millions of 3-byte ones) are gathered up to this many bytes per write. */
const GATHER = 1 << 20

/**
 * Writes the tar's bytes at their place in `output`, small pieces gathered
 * into one write; the first write error is kept (the job fails with it).
 * What is written is flushed to disk in the background as it goes (one
 * `fdatasync` at a time, in libuv's thread pool), so the writer's final
 * `fsync` overlaps with the hashing instead of following it. `finish` writes
 * what is gathered: the tar is all written once it returns.
 */
const openOutput = (output: TarOutput | UnpackOutput | undefined) => {
  if (output === undefined) return undefined
  if ("unpackInto" in output) return openUnpack(output.unpackInto)
  const fd = fs.openSync(output.file, "r+")
  let position = output.position
  let unflushed = 0
  let flushing: Promise<void> | undefined
  const put = (bytes: Uint8Array) => {
    try {
      writeAllAt(fd, bytes, position)
    } catch (error) {
      sink.error ??= `writing ${output.file}: ${errorMessage(error)}`
      throw error
    }
    position += bytes.length
    unflushed += bytes.length
    if (unflushed >= FLUSH_EVERY && flushing === undefined) {
      unflushed = 0
      // An error here shows again in the writer's own fsync.
      flushing = new Promise<void>((resolve) => fs.fdatasync(fd, () => resolve())).then(() => void (flushing = undefined))
    }
  }
  const writes = new GatheredWrites(put, GATHER)
  const sink = {
    error: undefined as string | undefined,
    write: (bytes: Uint8Array) => writes.write(bytes),
    finish: () => writes.flush(),
    close: async () => {
      await flushing
      fs.closeSync(fd)
    },
  }
  return sink
}

/** Unpacks the tar into `dir` as it comes (the overlay2 target); the first error is kept, and the job fails with it. */
const openUnpack = (dir: string) => {
  const unpacker = overlayTarUnpacker(new Uint8Array(Buffer.from(dir)))
  const failing = <A>(action: () => A): A => {
    try {
      return action()
    } catch (error) {
      sink.error ??= `unpacking into ${dir}: ${errorMessage(error)}`
      throw error
    }
  }
  const sink = {
    error: undefined as string | undefined,
    write: (bytes: Uint8Array) => failing(() => unpacker.write(bytes)),
    finish: () => failing(unpacker.finish),
    close: () => {
      if (sink.error !== undefined) unpacker.abort()
      return Promise.resolve()
    },
  }
  return sink
}

const fail = (job: number, reason: JobFailureReason, detail: string) => self.postMessage({ kind: "failed", job, reason, detail })

const regenerate = async (request: RegenerateJob): Promise<void> => {
  const job = request.job
  let output: ReturnType<typeof openOutput>
  try {
    output = openOutput(request.output)
    const result = regenerateLayer(request, engine, (bytes) => self.postMessage({ kind: "progress", job, bytes }), output?.write)
    output?.finish()
    self.postMessage({ kind: "hashed", job, ...result })
  } catch (error) {
    if (output?.error !== undefined) fail(job, "OutputFailed", output.error)
    else fail(job, output === undefined && request.output !== undefined ? "OutputFailed" : "RegenerateFailed", errorMessage(error))
  } finally {
    await output?.close()
  }
}

const hash = async (request: HashRequest): Promise<void> => {
  const { job, tarDataPath, root, output: target } = request
  let output: ReturnType<typeof openOutput>
  try {
    output = openOutput(target)
  } catch (error) {
    const where = target === undefined ? "" : "unpackInto" in target ? target.unpackInto : target.file
    return fail(job, "OutputFailed", `opening ${where}: ${errorMessage(error)}`)
  }
  try {
    const result = await assembleLayer({
      onBytes: output?.write,
      tarDataPath,
      root: new LayerRoot(root),
      engine,
      lane,
      // Another core has nothing to do: hand big files' CRC to the lane thread.
      offloadNow: () => idleWorkers !== undefined && Atomics.load(idleWorkers, 0) > 0,
      onProgress: request.quiet === true ? undefined : (bytes) => self.postMessage({ kind: "progress", job, bytes }),
    })
    output?.finish()
    self.postMessage({ kind: "hashed", job, sha256: result.sha256, size: result.size, tarBytes: result.tarBytes })
  } catch (error) {
    if (output?.error !== undefined) return fail(job, "OutputFailed", output.error)
    const failure = error instanceof AssembleFailure
      ? error
      : new AssembleFailure("ReadError", errorMessage(error))
    fail(job, failure.reason, failure.detail)
  } finally {
    await output?.close()
  }
}
