/**
 * Messages between the main thread and the layer workers.
 *
 * @module
 */
import type { RegenerateRequest } from "../tar/RegenerateLayer.ts"
import type { AssembleFailureReason } from "../tar/TarSplitAssembler.ts"

/** Sent once to a layer worker: the shared memory of its CRC lane, if it has one, and the pool's idle count. */
export interface WorkerInit {
  readonly kind: "init"
  readonly lane: SharedArrayBuffer | undefined
  /** Int32 [0]: layer workers with nothing to do (see `HashPool`). */
  readonly idleWorkers: SharedArrayBuffer
}

/** Where a job also writes the tar it hashes (`export`): an existing file, from a byte offset on. */
export interface TarOutput {
  readonly file: string
  readonly position: number
}

/** Where a job unpacks the tar it hashes (the overlay2 target): an empty directory, as overlay2's `ApplyDiff` fills `diff/`. */
export interface UnpackOutput {
  readonly unpackInto: string
}

/** Hash one layer through its tar-split metadata. */
export interface HashRequest {
  readonly kind: "hash"
  readonly job: number
  readonly tarDataPath: string
  /** The directory holding the layer's files (a driver's read-only view). */
  readonly root: string
  readonly output?: TarOutput | UnpackOutput | undefined
  /** No progress messages (the bytes were counted when the layer was hashed before). */
  readonly quiet?: boolean | undefined
}

/** Regenerate one layer's tar from its files (the fallback path). */
export interface RegenerateJob extends RegenerateRequest {
  readonly kind: "regenerate"
  readonly job: number
  readonly output?: TarOutput | undefined
}

export type ToWorker = WorkerInit | HashRequest | RegenerateJob

/** Why a job failed: a tar-split reason, the regeneration itself, or writing its output. */
export type JobFailureReason = AssembleFailureReason | "RegenerateFailed" | "OutputFailed"

export type FromWorker =
  | { readonly kind: "progress"; readonly job: number; readonly bytes: number }
  | { readonly kind: "hashed"; readonly job: number; readonly sha256: string; readonly size: number; readonly tarBytes: number }
  | { readonly kind: "failed"; readonly job: number; readonly reason: JobFailureReason; readonly detail: string }
