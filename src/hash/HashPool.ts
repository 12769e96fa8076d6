/**
 * A bounded pool of layer workers (each with its CRC lane thread) that hashes
 * layers in parallel. Runs on Bun and Deno through the web `Worker` API.
 *
 * @module
 */
import { makeLaneMemory, stopLane } from "../crc/CrcLane.ts"
import type { FromWorker, JobFailureReason, TarOutput, ToWorker, UnpackOutput } from "./HashJob.ts"
import type { RegenerateRequest } from "../tar/RegenerateLayer.ts"

/** What hashing one layer gave. */
export type HashOutcome =
  | { readonly ok: true; readonly sha256: string; readonly size: number; readonly tarBytes: number }
  | { readonly ok: false; readonly reason: JobFailureReason; readonly detail: string }

export interface HashPoolOptions {
  /** Layers hashed at once. */
  readonly workers: number
  /** Give each layer worker a CRC lane thread (two cores per big layer): worth it with the WebAssembly CRC only. */
  readonly lanes: boolean
  /** Tar bytes hashed, reported as they go. */
  readonly onProgress?: ((bytes: number) => void) | undefined
}

type JobRequest = ToWorker extends infer T ? T extends { job: number } ? Omit<T, "job"> : never : never

interface Pending {
  readonly request: JobRequest
  readonly resolve: (outcome: HashOutcome) => void
}

interface Slot {
  readonly worker: Worker
  readonly lane: Worker | undefined
  readonly laneMemory: SharedArrayBuffer | undefined
  busy: { readonly job: number; readonly resolve: (outcome: HashOutcome) => void } | undefined
}

/**
 * Starts the worker whose entry file sits beside this one. In a `bun build
 * --compile` binary every module's `import.meta.url` is the executable's
 * (`/$bunfs/root/<name>`) and the entry points sit below it by their paths
 * under `src/` (see build.ts), so there the path is given from `src/`.
 */
const spawn = (file: string): Worker => {
  const compiled = import.meta.url.includes("/$bunfs/")
  return new Worker(new URL(compiled ? `./hash/${file}` : `./${file}`, import.meta.url).href, { type: "module" })
}

/** Starts the workers; `close` terminates them. */
export class HashPool {
  private readonly slots: Array<Slot> = []
  private readonly queue: Array<Pending> = []
  private nextJob = 0
  private closed = false
  /** Int32 [0]: workers without a layer, read by the workers to decide whether to use their CRC lane. */
  private readonly idleWorkers = new Int32Array(new SharedArrayBuffer(4))

  constructor(private readonly options: HashPoolOptions) {
    for (let i = 0; i < Math.max(1, options.workers); i++) {
      const worker = spawn("HashWorker.ts")
      const memory = options.lanes ? makeLaneMemory() : undefined
      const lane = memory === undefined ? undefined : spawn("CrcLaneWorker.ts")
      if (lane !== undefined) lane.postMessage(memory)
      const slot: Slot = { worker, lane, laneMemory: memory, busy: undefined }
      worker.onmessage = (event: MessageEvent<FromWorker>) => this.receive(slot, event.data)
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault()
        this.crash(slot, event.message)
      }
      worker.postMessage({ kind: "init", lane: memory, idleWorkers: this.idleWorkers.buffer as SharedArrayBuffer } satisfies ToWorker)
      this.slots.push(slot)
    }
    this.countIdle()
  }

  /** Layers hashed at once. */
  get size(): number {
    return this.slots.length
  }

  /** Hashes the layer whose metadata is `tarDataPath` over the files under `root` (and writes its tar to `output`). */
  hash(tarDataPath: string, root: string, output?: TarOutput | UnpackOutput): Promise<HashOutcome> {
    return this.submit({ kind: "hash", tarDataPath, root, output })
  }

  /** Hashes the layer as `hash` does, unpacking its tar into the empty directory `into` as overlay2 does (no progress: it was hashed before). */
  unpack(tarDataPath: string, root: string, into: string): Promise<HashOutcome> {
    return this.submit({ kind: "hash", tarDataPath, root, output: { unpackInto: into }, quiet: true })
  }

  /** Regenerates the layer's tar from its files (the fallback path), writing its tar-split to `request.tarDataOut` (and the tar to `output`). */
  regenerate(request: RegenerateRequest, output?: TarOutput): Promise<HashOutcome> {
    return this.submit({ kind: "regenerate", ...request, output })
  }

  private submit(request: JobRequest): Promise<HashOutcome> {
    if (this.closed) return Promise.reject(new Error("Cannot hash a layer: the worker pool is closed"))
    if (this.slots.length === 0) return Promise.resolve(this.noWorkers())
    return new Promise((resolve) => {
      this.queue.push({ request, resolve })
      this.dispatch()
    })
  }

  /** Why the pool has no worker left (each crashed): what a job then gets instead of waiting forever. */
  private lastCrash = "no worker started"
  private noWorkers(): HashOutcome {
    return { ok: false, reason: "ReadError", detail: `no layer worker left: ${this.lastCrash}` }
  }

  close(): void {
    this.closed = true
    for (const slot of this.slots) {
      if (slot.laneMemory !== undefined) stopLane(slot.laneMemory)
      slot.worker.terminate()
      slot.lane?.terminate()
      slot.busy?.resolve({ ok: false, reason: "ReadError", detail: "interrupted" })
      slot.busy = undefined
    }
    for (const pending of this.queue.splice(0)) pending.resolve({ ok: false, reason: "ReadError", detail: "interrupted" })
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy !== undefined) continue
      const pending = this.queue.shift()
      if (pending === undefined) return
      const job = this.nextJob++
      slot.busy = { job, resolve: pending.resolve }
      slot.worker.postMessage({ ...pending.request, job } satisfies ToWorker)
    }
    this.countIdle()
  }

  private countIdle(): void {
    Atomics.store(this.idleWorkers, 0, this.slots.filter((slot) => slot.busy === undefined).length)
  }

  private receive(slot: Slot, message: FromWorker): void {
    if (message.kind === "progress") {
      this.options.onProgress?.(message.bytes)
      return
    }
    const busy = slot.busy
    if (busy === undefined || busy.job !== message.job) return
    slot.busy = undefined
    this.countIdle()
    busy.resolve(
      message.kind === "hashed"
        ? { ok: true, sha256: message.sha256, size: message.size, tarBytes: message.tarBytes }
        : { ok: false, reason: message.reason, detail: message.detail },
    )
    this.dispatch()
  }

  /** A worker died (or never loaded): its layer fails, it takes no more, and with none left every waiting layer fails. */
  private crash(slot: Slot, message: string): void {
    const busy = slot.busy
    slot.busy = undefined
    busy?.resolve({ ok: false, reason: "ReadError", detail: `worker crashed: ${message}` })
    const at = this.slots.indexOf(slot)
    if (at === -1) return
    this.slots.splice(at, 1)
    if (slot.laneMemory !== undefined) stopLane(slot.laneMemory)
    slot.lane?.terminate()
    slot.worker.terminate()
    this.lastCrash = message
    if (this.slots.length === 0) for (const pending of this.queue.splice(0)) pending.resolve(this.noWorkers())
    else this.dispatch()
  }
}
