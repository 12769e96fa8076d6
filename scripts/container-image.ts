/**
 * cas-migrator as a container image: a docker-archive of an image FROM
 * scratch holding the compiled binary and the shared libraries it needs
 * (found with `ldd`), plus, when this machine has them, the tools the
 * storage drivers run (`mount`, `umount`, `losetup`, `dmsetup`, `thin_dump`,
 * `zfs`) with theirs. Tagged `cas-migrator:<version>` and
 * `cas-migrator:latest`; the binary is the entrypoint and `checksums` the
 * default command. It has both layouts `docker load` reads: `manifest.json`
 * (Docker 1.10+) and `repositories` with a v1 directory (Docker <= 1.9), so
 * the old hosts that need it can load it.
 *
 *   bun scripts/container-image.ts BINARY OUT.tar
 *
 * Written with the project's own archive writer; reproducible (mtimes 0).
 *
 * @module
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { ArchiveTar } from "../src/export/ArchiveTar.ts"
import { VERSION } from "../src/Version.ts"

const TOOLS = ["mount", "umount", "losetup", "dmsetup", "thin_dump", "zfs", "zpool"]
const CREATED = "2016-02-04T00:00:00Z" // Docker 1.10's release: a fixed date keeps the image ID reproducible

/** Shared libraries a dynamic executable loads, by the paths the loader looks for them at. */
const librariesOf = (file: string): Array<string> => {
  const result = spawnSync("ldd", [file], { encoding: "utf8" })
  if (result.status !== 0) return [] // static, or not an ELF: nothing to add
  return [...result.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((match) => match[1]!)
}

const which = (tool: string): string | undefined => {
  const result = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" })
  return result.status === 0 ? result.stdout.trim() : undefined
}

/** Writes the image archive; returns its image ID. */
export const writeContainerImage = (binary: string, out: string): string => {
  const files = new Map<string, string>() // path in the image -> file here
  files.set("/cas-migrator", binary)
  for (const tool of TOOLS) {
    const found = which(tool)
    if (found !== undefined) files.set(`/usr/sbin/${tool}`, found)
  }
  for (const file of [...files.values()]) for (const library of librariesOf(file)) files.set(library, library)

  // The layer: directories first, then every file (symlinks resolved: the image needs the bytes).
  const layerFile = `${out}.layer.tmp`
  const layerFd = fs.openSync(layerFile, "w", 0o600)
  const layer = new ArchiveTar(layerFd)
  const directories = new Set<string>(["tmp"])
  for (const target of files.keys()) {
    const parts = target.split("/").filter((p) => p !== "")
    for (let i = 1; i < parts.length; i++) directories.add(parts.slice(0, i).join("/"))
  }
  for (const dir of [...directories].sort()) layer.directory(dir)
  for (const [target, source] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const real = fs.realpathSync(source)
    layer.fileFrom(target.slice(1), real, fs.statSync(real).size, 0o100755)
  }
  layer.close()
  fs.closeSync(layerFd)
  const layerBytes = fs.readFileSync(layerFile)
  const diffId = `sha256:${createHash("sha256").update(layerBytes).digest("hex")}`

  const containerConfig = {
    Entrypoint: ["/cas-migrator"],
    Cmd: ["checksums"],
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=/tmp"],
    Labels: { "org.opencontainers.image.title": "cas-migrator", "org.opencontainers.image.version": VERSION },
  }
  const config = JSON.stringify({
    architecture: "amd64",
    config: containerConfig,
    created: CREATED,
    history: [{ created: CREATED, created_by: "cas-migrator scripts/container-image.ts" }],
    os: "linux",
    rootfs: { type: "layers", diff_ids: [diffId] },
  })
  const imageId = createHash("sha256").update(config).digest("hex")
  const v1Id = createHash("sha256").update(`v1 ${diffId}`).digest("hex")
  const v1Json = JSON.stringify({ id: v1Id, created: CREATED, config: containerConfig, architecture: "amd64", os: "linux" })

  const fd = fs.openSync(`${out}.tmp`, "w", 0o644)
  const tar = new ArchiveTar(fd)
  tar.directory(v1Id)
  tar.file(`${v1Id}/VERSION`, "1.0")
  tar.file(`${v1Id}/json`, v1Json)
  tar.fileFrom(`${v1Id}/layer.tar`, layerFile, layerBytes.length)
  tar.file(`${imageId}.json`, config)
  tar.file(
    "manifest.json",
    JSON.stringify([{ Config: `${imageId}.json`, RepoTags: [`cas-migrator:${VERSION}`, "cas-migrator:latest"], Layers: [`${v1Id}/layer.tar`] }]),
  )
  tar.file("repositories", JSON.stringify({ "cas-migrator": { [VERSION]: v1Id, latest: v1Id } }) + "\n")
  tar.close()
  fs.closeSync(fd)
  fs.rmSync(layerFile)
  fs.renameSync(`${out}.tmp`, out)
  return `sha256:${imageId}`
}

if (import.meta.main) {
  const [binary, out] = process.argv.slice(2)
  if (binary === undefined || out === undefined) {
    process.stderr.write("usage: container-image.ts BINARY OUT.tar\n")
    process.exit(2)
  }
  const id = writeContainerImage(path.resolve(binary), path.resolve(out))
  process.stderr.write(`wrote ${out}: cas-migrator:${VERSION} and :latest, image ${id}\n`)
}
