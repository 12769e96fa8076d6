/**
 * cas-migrator's public API: the pieces the CLI is made of, for programs and
 * for storage driver plugins.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { checksums, crc64EngineKind, HashPool, builtinDrivers } from "./mod.ts"
 *
 * // CRC lane threads help only the WebAssembly CRC; the native one needs none.
 * const pool = new HashPool({ workers: 2, lanes: crc64EngineKind() === "wasm" })
 * const report = await Effect.runPromise(
 *   checksums({ root: "/var/lib/docker", pool, concurrency: 4 }).pipe(
 *     Effect.provide(builtinDrivers.overlay!("/var/lib/docker", new Map())),
 *   ),
 * )
 * pool.close()
 * ```
 * @module
 */
export { builtinDrivers, type DriverPlugin } from "./plugins/index.ts"
export { checksums, type ChecksumsReport, FallbackError, type LayerReport } from "./src/checksums/Checksums.ts"
export { crc64, crc64Bytes, crc64Update } from "./src/crc/Crc64.ts"
export { type Crc64Engine, crc64EngineKind, makeCrc64Engine } from "./src/crc/Crc64Engine.ts"
export { directoryDriver, type DirectoryLayout } from "./src/driver/DirectoryDriver.ts"
export { chooseDriver, RootError } from "./src/legacy/DockerRoot.ts"
export { HashPool, type HashOutcome } from "./src/hash/HashPool.ts"
export { HelperFileError } from "./src/legacy/HelperFiles.ts"
export * from "./src/Ids.ts"
export { LayerPathError, LayerRoot } from "./src/tar/LayerPath.ts"
export { GraphError, listGraph, readParent } from "./src/legacy/LegacyGraph.ts"
export { DRIVER_NAMES, DriverError, type DriverName, type LayerView, StorageDriver } from "./src/driver/StorageDriver.ts"
export { decodeEntry, encodeEntry, type TarSplitEntry } from "./src/tar/TarSplit.ts"
export { type Assembled, AssembleFailure, assembleLayer } from "./src/tar/TarSplitAssembler.ts"
export { GoTarWriter, type TarHeader } from "./src/tar/GoTarWriter.ts"
export { changesBetween, writeChanges, writeTree } from "./src/tar/LayerArchive.ts"
export { type LayerFiles, regenerateLayer } from "./src/tar/RegenerateLayer.ts"
export { TarSplitRecorder } from "./src/tar/TarSplitRecorder.ts"
