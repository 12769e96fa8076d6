/**
 * Entry point of a layer worker thread: reassembles and hashes the layers the
 * pool sends, one at a time, reporting progress and the result.
 *
 * @module
 */
import { CrcLaneProducer } from "./CrcLane.ts"
import { makeCrc64Engine } from "./Crc64Wasm.ts"
import type { FromWorker, RegenerateJob, ToWorker } from "./HashJob.ts"
import { LayerRoot } from "./LayerPath.ts"
import { regenerateLayer } from "./RegenerateLayer.ts"
import { AssembleFailure, assembleLayer } from "./TarSplitAssembler.ts"
import { errorMessage } from "./platform/ErrorCode.ts"

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
  queue = queue.then(() =>
    message.kind === "hash" ? hash(message.job, message.tarDataPath, message.root) : regenerate(message)
  )
}

const regenerate = (request: RegenerateJob): void => {
  const job = request.job
  try {
    const result = regenerateLayer(request, engine, (bytes) => self.postMessage({ kind: "progress", job, bytes }))
    self.postMessage({ kind: "hashed", job, ...result })
  } catch (error) {
    self.postMessage({
      kind: "failed",
      job,
      reason: "RegenerateFailed",
      detail: errorMessage(error),
    })
  }
}

const hash = async (job: number, tarDataPath: string, root: string): Promise<void> => {
  try {
    const result = await assembleLayer({
      tarDataPath,
      root: new LayerRoot(root),
      engine,
      lane,
      // Another core has nothing to do: hand big files' CRC to the lane thread.
      offloadNow: () => idleWorkers !== undefined && Atomics.load(idleWorkers, 0) > 0,
      onProgress: (bytes) => self.postMessage({ kind: "progress", job, bytes }),
    })
    self.postMessage({ kind: "hashed", job, sha256: result.sha256, size: result.size, tarBytes: result.tarBytes })
  } catch (error) {
    const failure = error instanceof AssembleFailure
      ? error
      : new AssembleFailure("ReadError", errorMessage(error))
    self.postMessage({ kind: "failed", job, reason: failure.reason, detail: failure.detail })
  }
}
