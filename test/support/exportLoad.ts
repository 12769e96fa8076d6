/**
 * What the export tests share: `export`'s JSON report, untarring an archive
 * with GNU tar, a Debian dockerd 20.10 on a fresh overlay2 root (a
 * loop-mounted ext4 image), and the check that `docker load` of an exported
 * docker-archive gives the image IDs and tags `migrate` gives and that
 * `docker save` gives back the diffIDs.
 *
 * @module
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Dockerd, withDockerd } from "./dockerd.ts"
import { changedPaths, sh, snapshot, tempDir } from "./cli.ts"

export interface ExportReport {
  readonly exitCode: number
  readonly images: ReadonlyArray<{ v1Id: string; references: Array<string>; status: string; imageId?: string; error?: string }>
  readonly layers: ReadonlyArray<{ id: string; diffId: string }>
}

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/** The members of an uncompressed tar, extracted by GNU tar (a real reader). */
export const untar = (archive: string): string => {
  const dir = tempDir("untar")
  sh(`tar -xf "$1" -C "$2"`, archive, dir)
  return dir
}

/** Runs `body` with dockerd 20.10 on overlay2 over a fresh 1 GiB ext4 image loop-mounted under `base`; unmounts after. */
export const withOverlay2Dockerd = <A>(base: string, body: (daemon: Dockerd) => A): A => {
  const image = path.join(base, "overlay2.img")
  const data = path.join(base, "overlay2-data")
  fs.mkdirSync(data)
  sh(`truncate -s 1G "$1" && mkfs.ext4 -q -F "$1" && mount -o loop "$1" "$2"`, image, data)
  try {
    return withDockerd(data, "overlay2", body)
  } finally {
    spawnSync("umount", [data])
    fs.rmSync(image, { force: true })
  }
}

/** What `migrate` gave a root: v1 ID -> image ID, and every tag (not digest) reference -> image ID. */
export interface Migrated {
  readonly images: Readonly<Record<string, string>>
  readonly tags: ReadonlyMap<string, string>
}

type Repositories = { readonly Repositories: Record<string, Record<string, string>> }

const migratedFrom = (images: Record<string, string>, { Repositories: repositories }: Repositories): Migrated => {
  const tags = new Map<string, string>()
  for (const references of Object.values(repositories)) {
    for (const [reference, imageId] of Object.entries(references)) if (!reference.includes("@")) tags.set(reference, imageId)
  }
  return { images, tags }
}

/** Reads `.migration-v1-images.json` and `image/<driver>/repositories.json` of a migrated root. */
export const readMigrated = (root: string, driver: string): Migrated =>
  migratedFrom(
    JSON.parse(fs.readFileSync(path.join(root, ".migration-v1-images.json"), "utf8")) as Record<string, string>,
    JSON.parse(fs.readFileSync(path.join(root, "image", driver, "repositories.json"), "utf8")) as Repositories,
  )

/** What Docker's own migration gave a golden (its `expected.json`). */
export const goldenMigrated = (expectedJson: string): Migrated => {
  const expected = JSON.parse(fs.readFileSync(expectedJson, "utf8")) as { migration_v1_images: Record<string, string>; repositories: Repositories }
  return migratedFrom(expected.migration_v1_images, expected.repositories)
}

/**
 * `docker load` of `archive` (what `export` reported in `report`): every
 * exported image is in the daemon with the ID `migrate` gave it, and the tags
 * the daemon lists for it are exactly the tags `migrate` gave it; `docker
 * save` of each image gives layers hashing to its config's diffIDs. The
 * images are removed after.
 */
export const checkDockerLoad = (docker: Dockerd["docker"], archive: string, report: ExportReport, migrated: Migrated, label: string): void => {
  const exported = report.images.filter((i) => i.status === "exported")
  assert.ok(exported.length > 0, `${label}: nothing exported`)
  docker("load", "-i", archive)
  const listed = docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").trim().split("\n")
  const imageIds = [...new Set(exported.map((i) => i.imageId!))]
  for (const image of exported) assert.equal(image.imageId, migrated.images[image.v1Id], `${label}: image ID of ${image.v1Id}`)
  for (const imageId of imageIds) {
    assert.equal(docker("image", "inspect", "--format", "{{.ID}}", imageId).trim(), imageId, `${label}: ${imageId} not loaded`)
    const want = [...migrated.tags].filter(([, id]) => id === imageId).map(([tag]) => tag).sort()
    const have = listed.filter((line) => line.endsWith(` ${imageId}`) && !line.startsWith("<none>")).map((line) => line.split(" ")[0]!).sort()
    assert.deepEqual(have, want, `${label}: the tags of ${imageId}`)
    const saved = path.join(tempDir("docker-save"), "saved.tar")
    docker("save", "-o", saved, imageId)
    const dir = untar(saved)
    const [entry] = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Array<{ Config: string; Layers: Array<string> }>
    const config = JSON.parse(fs.readFileSync(path.join(dir, entry!.Config), "utf8")) as { rootfs: { diff_ids: Array<string> } }
    assert.deepEqual(
      entry!.Layers.map((layer) => `sha256:${sha256Hex(fs.readFileSync(path.join(dir, layer)))}`),
      config.rootfs.diff_ids,
      `${label}: docker save of ${imageId}`,
    )
    fs.rmSync(path.dirname(saved), { recursive: true, force: true })
    fs.rmSync(dir, { recursive: true, force: true })
  }
  docker("rmi", "-f", ...imageIds)
}

/**
 * Fails unless the root is as `before` (a `snapshot`) but for `<root>/tmp`,
 * Docker's own TMPDIR, where the zfs and devicemapper plugins mount layers:
 * it may appear, and must be empty.
 */
export const assertRootUnchanged = (root: string, before: Map<string, string>): void => {
  assert.deepEqual(changedPaths(before, snapshot(root)).filter((changed) => changed !== "tmp"), [], "export wrote into the Docker root")
  const scratch = path.join(root, "tmp")
  assert.deepEqual(fs.existsSync(scratch) ? fs.readdirSync(scratch) : [], [], "export left scratch in <root>/tmp")
}
