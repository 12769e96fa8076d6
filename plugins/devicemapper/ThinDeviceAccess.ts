/**
 * The two ways to reach a layer's thin device: `dmsetup` activation on a host
 * with device-mapper (DmsetupActivation.ts), or the pool's files read
 * directly (DirectRead.ts). Either gives a path holding the device's bytes,
 * which the plugin mounts read-only.
 *
 * @module
 */
import type { ThinDevice } from "./DockerDevices.ts"

/** A device's bytes, readable at `path` until `release`. */
export interface OpenDevice {
  /** A block device, or a regular file to mount through a loop device. */
  readonly path: string
  readonly isFile: boolean
  readonly release: () => Promise<void>
}

export interface ThinDeviceAccess {
  readonly name: "dmsetup" | "direct"
  readonly open: (device: ThinDevice, label: string) => Promise<OpenDevice>
  /** Removes what runs that were killed left (devices, loops); returns their names. */
  readonly sweepStale: () => Promise<ReadonlyArray<string>>
  /** Releases what every `open` shared (the pool and its loop devices); called once, last. */
  readonly close: () => Promise<void>
}
