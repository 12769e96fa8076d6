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
export { checksums, type ChecksumsReport, FallbackError, type LayerReport } from "./src/Checksums.ts"
export { crc64, crc64Bytes, crc64Update } from "./src/Crc64.ts"
export { type Crc64Engine, crc64EngineKind, makeCrc64Engine } from "./src/Crc64Engine.ts"
export { directoryDriver, type DirectoryLayout } from "./src/DirectoryDriver.ts"
export { chooseDriver, RootError } from "./src/DockerRoot.ts"
export { HashPool, type HashOutcome } from "./src/HashPool.ts"
export { HelperFileError } from "./src/HelperFiles.ts"
export * from "./src/Ids.ts"
export { LayerPathError, LayerRoot } from "./src/LayerPath.ts"
export { GraphError, listGraph, readParent } from "./src/LegacyGraph.ts"
export { DRIVER_NAMES, DriverError, type DriverName, type LayerView, StorageDriver } from "./src/StorageDriver.ts"
export { decodeEntry, encodeEntry, type TarSplitEntry } from "./src/TarSplit.ts"
export { type Assembled, AssembleFailure, assembleLayer } from "./src/TarSplitAssembler.ts"
export { GoTarWriter, type TarHeader } from "./src/GoTarWriter.ts"
export { changesBetween, writeChanges, writeTree } from "./src/LayerArchive.ts"
export { type LayerFiles, regenerateLayer } from "./src/RegenerateLayer.ts"
export { TarSplitRecorder } from "./src/TarSplitRecorder.ts"
