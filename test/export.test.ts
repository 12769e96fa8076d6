/**
 * `export` of the vfs golden: every image docker-archive'd with the image ID
 * Docker's migration gave it, each layer tar hashing to its diffID, the root
 * only read; an image whose trusted helper files lie fails alone and leaves
 * nothing in an OCI directory; then real clients read the results: Debian's
 * dockerd 20.10 (`docker load`), skopeo and umoci.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import process from "node:process"
import type { GraphId } from "../src/Ids.ts"
import { type LegacyReference, selectImages } from "../src/export/ImageSelection.ts"
import { haveDockerd, withDockerd } from "./support/dockerd.ts"
import { describeTree, treeDifferences } from "./support/treeCompare.ts"
import { checkDockerLoad, type ExportReport, goldenMigrated, sha256Hex, untar, withOverlay2Dockerd } from "./support/exportLoad.ts"
import { changedPaths, cliCommand, extractGolden, isRoot, makeGraph, repo, runCli, sh, snapshot, tempDir } from "./support/cli.ts"

const NEEDS_ROOT = "needs root: the golden holds device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** export tests NOT RUN: ${NEEDS_ROOT} ***\n`)
const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as {
  readonly migration_v1_images: Record<string, string>
}
const sha = sha256Hex
type Report = ExportReport

let golden: string | undefined
const vfsGolden = () => (golden ??= extractGolden("vfs"))

test("docker-archive: each image with migrate's ID, each layer.tar hashing to its diffID, the root untouched; a lying helper file fails its image alone", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = vfsGolden()
  const before = snapshot(root)
  const out = path.join(tempDir("export"), "all.tar")
  const run = runCli(["export", "--graph", root, "--output", out, "--json"])
  assert.equal(run.code, 1, run.stderr) // the golden's image whose created is null, and the one whose helper files lie
  const report = JSON.parse(run.stdout) as Report
  assert.deepEqual(changedPaths(before, snapshot(root)), [], "export wrote into the Docker root")
  const exported = report.images.filter((i) => i.status === "exported")
  assert.ok(exported.length >= 8, `only ${exported.length} images exported`)
  for (const image of exported) assert.equal(image.imageId, expected.migration_v1_images[image.v1Id], `image ID of ${image.v1Id}`)
  const lying = report.images.find((i) => i.references.includes("pre:latest"))
  assert.match(lying?.error ?? "", /Cannot export layer 9175cf3483c1[0-9a-f]*: its tar hashes to sha256:[0-9a-f]{64}, not to sha256:d502/)

  const dir = untar(out)
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Array<{ Config: string; RepoTags: Array<string> | null; Layers: Array<string> }>
  assert.equal(manifest.length, new Set(exported.map((i) => i.imageId)).size) // byte-identical images are one entry
  for (const entry of manifest) {
    const config = fs.readFileSync(path.join(dir, entry.Config))
    assert.equal(`${sha(config)}.json`, entry.Config, "config named by its SHA-256")
    const diffIds = (JSON.parse(config.toString()) as { rootfs: { diff_ids: Array<string> } }).rootfs.diff_ids
    assert.deepEqual(entry.Layers.map((layer) => `sha256:${sha(fs.readFileSync(path.join(dir, layer)))}`), diffIds)
    for (const layer of entry.Layers) {
      const v1 = path.dirname(layer)
      assert.equal(fs.readFileSync(path.join(dir, v1, "VERSION"), "utf8"), "1.0")
      assert.deepEqual(fs.readFileSync(path.join(dir, v1, "json")), fs.readFileSync(path.join(root, "graph", v1, "json")))
    }
  }
  const repositories = JSON.parse(fs.readFileSync(path.join(dir, "repositories"), "utf8")) as Record<string, Record<string, string>>
  assert.equal(repositories["busybox"]?.["latest"], "e327c30750f202ee85e5329e8ae608732be637370142395ab0daff8c8809f28d")

  // One image by tag, to stdout: the same bytes as to a file.
  const single = path.join(path.dirname(out), "one.tar")
  assert.equal(runCli(["export", "--graph", root, "--output", single, "busybox:1.0"]).code, 0)
  const piped = spawnSync("bash", ["-c", `"$@" > "${single}.stdout"`, "bash", ...cliArgs(["export", "--graph", root, "--output", "-", "docker.io/library/busybox:1.0"])])
  assert.equal(piped.status, 0, String(piped.stderr))
  assert.deepEqual(fs.readFileSync(`${single}.stdout`), fs.readFileSync(single))
  // Unknown names are named, and the rest goes on.
  const unknown = runCli(["export", "--graph", root, "--output", path.join(path.dirname(out), "u.tar"), "nosuch:tag", "busybox:1.0"])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /nosuch:tag: no such image/)
})

test("docker-archive and oci: layers with files of 512 KiB to 1 MiB after their headers are written in stream order, each hashing to its diffID", () => {
  // A read of half the write buffer or more went out before the header gathered ahead of it.
  const base = tempDir("export-order")
  const root = path.join(base, "root")
  const { layers } = makeGraph(root, "vfs", ["--size", "8MiB", "--layers", "2", "--big-files", "4", "--big-size", "520KiB-1000KiB", "--small-files", "6", "--small-max", "4KiB"])
  const diffIds = layers.map((layer) => layer.diffId)
  const archive = path.join(base, "all.tar")
  const run = runCli(["export", "--graph", root, "--all", "--output", archive])
  assert.equal(run.code, 0, run.stderr)
  const dir = untar(archive)
  const [entry] = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Array<{ Layers: Array<string> }>
  assert.deepEqual(entry!.Layers.map((layer) => `sha256:${sha(fs.readFileSync(path.join(dir, layer)))}`), diffIds)
  const layout = path.join(base, "oci")
  assert.equal(runCli(["export", "--graph", root, "--all", "--format", "oci", "--output", layout]).code, 0)
  const blobs = fs.readdirSync(path.join(layout, "blobs/sha256"))
  for (const blob of blobs) assert.equal(sha(fs.readFileSync(path.join(layout, "blobs/sha256", blob))), blob, `blob ${blob}`)
  for (const diffId of diffIds) assert.ok(blobs.includes(diffId.slice("sha256:".length)), `no blob for layer ${diffId}`)
})

const cliArgs = (args: ReadonlyArray<string>) => {
  const [command, argv] = cliCommand(args)
  return [command, ...argv]
}

test("oci and oci-archive: a layout whose blobs hash to their names, ref.name per tag, nothing of a failed image", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = vfsGolden()
  const base = tempDir("export-oci")
  for (const gzip of [false, true]) {
    const layout = path.join(base, gzip ? "gzip" : "plain")
    const run = runCli(["export", "--graph", root, "--format", "oci", ...(gzip ? ["--gzip"] : []), "--output", layout, "--json"])
    assert.equal(run.code, 1, run.stderr)
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(layout, "oci-layout"), "utf8")), { imageLayoutVersion: "1.0.0" })
    for (const blob of fs.readdirSync(path.join(layout, "blobs/sha256"))) {
      assert.equal(sha(fs.readFileSync(path.join(layout, "blobs/sha256", blob))), blob, `blob ${blob}`)
    }
    const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>
    }
    const names = index.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"])
    assert.ok(names.includes("busybox:1.0") && names.includes("example.com:5000/team/app:v1"), names.join(" "))
    assert.ok(!names.includes("pre:latest"), "the failed image is in index.json")
    // The lying layer's bytes are nowhere.
    const report = JSON.parse(run.stdout) as Report
    assert.ok(!report.layers.some((l) => l.id.startsWith("9175cf3483c1")))
    for (const m of index.manifests) {
      const manifest = JSON.parse(fs.readFileSync(path.join(layout, "blobs", m.digest.replace(":", "/")), "utf8")) as {
        config: { digest: string }
        layers: Array<{ mediaType: string }>
      }
      assert.ok(Object.values(expected.migration_v1_images).includes(manifest.config.digest), `config ${manifest.config.digest} is an image ID of migrate's`)
      for (const layer of manifest.layers) assert.equal(layer.mediaType, `application/vnd.oci.image.layer.v1.tar${gzip ? "+gzip" : ""}`)
    }
  }
  const archive = path.join(base, "layout.tar")
  assert.equal(runCli(["export", "--graph", root, "--format", "oci-archive", "--output", archive]).code, 1)
  const unpacked = untar(archive)
  assert.deepEqual(fs.readFileSync(path.join(unpacked, "index.json")), fs.readFileSync(path.join(base, "plain", "index.json")))
})

const have = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0
const DOCKER_SKIP = !isRoot ? NEEDS_ROOT : !haveDockerd ? "needs Debian's docker.io (npm test installs it)" : false
if (DOCKER_SKIP !== false) console.warn(`\n*** export: docker load test NOT RUN: ${DOCKER_SKIP} ***\n`)

test("docker load (Debian's dockerd 20.10) of the docker-archive lists every exported image with migrate's ID and its tags", { skip: DOCKER_SKIP }, () => {
  const root = vfsGolden()
  const base = tempDir("export-load")
  const archive = path.join(base, "all.tar")
  const report = JSON.parse(runCli(["export", "--graph", root, "--output", archive, "--json"]).stdout) as Report
  withDockerd(path.join(base, "data"), "vfs", ({ docker, state }) => {
    docker("load", "-i", archive)
    const listed = docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").trim().split("\n")
    for (const image of report.images.filter((i) => i.status === "exported")) {
      const ids = docker("image", "inspect", "--format", "{{.ID}}", image.imageId!).trim()
      assert.equal(ids, image.imageId)
      for (const reference of image.references.filter((r) => !r.includes("@"))) {
        assert.ok(listed.includes(`${reference} ${image.imageId}`), `${reference} not listed with ${image.imageId}: ${listed.join("; ")}`)
      }
    }
    // containerd's own client imports the OCI archive (the daemon's containerd, its own namespace).
    const ociArchive = path.join(base, "layout.tar")
    assert.equal(runCli(["export", "--graph", root, "--format", "oci-archive", "--output", ociArchive, "busybox:1.0"]).code, 0)
    const address = path.join(fs.readFileSync(path.join(state, "run-dir"), "utf8").trim(), "containerd.sock")
    const ctr = (...args: Array<string>) => spawnSync("ctr", ["--address", address, "--namespace", "cas-migrator-test", ...args], { encoding: "utf8" })
    const imported = ctr("images", "import", ociArchive)
    assert.equal(imported.status, 0, imported.stderr)
    const busybox = report.images.find((i) => i.references.includes("busybox:1.0"))!
    const inContainerd = ctr("images", "ls")
    assert.match(inContainerd.stdout, /docker\.io\/library\/busybox:1\.0/)
    const config = ctr("content", "get", busybox.imageId!)
    assert.equal(config.status, 0, `the image's config ${busybox.imageId} is not in containerd's content store: ${config.stderr}`)
  })
})

const OCI_SKIP = !isRoot ? NEEDS_ROOT : !have("skopeo") || !have("umoci") ? "needs skopeo and umoci (npm test installs them)" : false
if (OCI_SKIP !== false) console.warn(`\n*** export: skopeo/umoci test NOT RUN: ${OCI_SKIP} ***\n`)

test("skopeo inspects and copies the OCI layout, umoci unpacks an image from it", { skip: OCI_SKIP }, () => {
  const root = vfsGolden()
  const base = tempDir("export-skopeo")
  const layout = path.join(base, "layout")
  runCli(["export", "--graph", root, "--format", "oci", "--gzip", "--output", layout])
  const inspect = spawnSync("skopeo", ["inspect", "--config", `oci:${layout}:busybox:1.0`], { encoding: "utf8" })
  assert.equal(inspect.status, 0, inspect.stderr)
  assert.ok("rootfs" in (JSON.parse(inspect.stdout) as object))
  const copy = spawnSync("skopeo", ["copy", `oci:${layout}:busybox:1.0`, `dir:${path.join(base, "copied")}`], { encoding: "utf8" })
  assert.equal(copy.status, 0, copy.stderr)
  // oci: to docker-archive: keeps the config bytes, so the image ID.
  const archive = path.join(base, "copied.tar")
  const toArchive = spawnSync("skopeo", ["copy", `oci:${layout}:busybox:1.0`, `docker-archive:${archive}:busybox:1.0`], { encoding: "utf8" })
  assert.equal(toArchive.status, 0, toArchive.stderr)
  const config = spawnSync("skopeo", ["inspect", "--config", "--raw", `docker-archive:${archive}`])
  assert.equal(config.status, 0, String(config.stderr))
  assert.ok(Object.values(expected.migration_v1_images).includes(`sha256:${sha(config.stdout)}`), "skopeo's copy changed the image ID")
  const bundle = path.join(base, "bundle")
  const unpack = spawnSync("umoci", ["unpack", "--image", `${layout}:busybox:1.0`, bundle], { encoding: "utf8" })
  assert.equal(unpack.status, 0, unpack.stderr)
  assert.ok(fs.existsSync(path.join(bundle, "rootfs")), "no rootfs unpacked")
})

test("umoci unpack of every exported image gives exactly its layer files: paths, types, modes, owners, contents, symlink targets, devices, mtimes", { skip: OCI_SKIP }, () => {
  const root = vfsGolden()
  const base = tempDir("export-umoci")
  const layout = path.join(base, "layout")
  const report = JSON.parse(runCli(["export", "--graph", root, "--format", "oci", "--output", layout, "--json"]).stdout) as Report
  const exported = report.images.filter((i) => i.status === "exported" && i.references.some((r) => !r.includes("@")))
  assert.ok(exported.length >= 5, `only ${exported.length} tagged images exported`)
  const MTIMES = ["file", "symlink", "other", "directory"]
  let checkedTheCheck = false
  let compared = 0
  for (const image of exported) {
    const tag = image.references.find((r) => !r.includes("@"))!
    const bundle = path.join(base, `bundle-${image.v1Id}`)
    const unpack = spawnSync("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle], { encoding: "utf8" })
    assert.equal(unpack.status, 0, unpack.stderr)
    // vfs keeps each layer's whole root: the union of the image's layers applied in order.
    const want = describeTree(path.join(root, "vfs/dir", image.v1Id))
    assert.ok(want.size > 0, `${image.v1Id}: no files`)
    compared += want.size
    const rootfs = path.join(bundle, "rootfs")
    assert.deepEqual(treeDifferences(want, describeTree(rootfs), MTIMES), [], `${tag} (${image.v1Id})`)
    if (!checkedTheCheck) {
      // The comparison sees a dropped file and a changed mode.
      const [dropped, changed] = [...want].filter(([, entry]) => entry.kind === "file" && entry.links === "").map(([key]) => key)
      fs.rmSync(path.join(rootfs, dropped!))
      fs.chmodSync(path.join(rootfs, changed!), want.get(changed!)!.mode ^ 0o111)
      const seen = treeDifferences(want, describeTree(rootfs), MTIMES)
      assert.ok(seen.includes(`${dropped}: missing`) && seen.some((problem) => problem.startsWith(`${changed}: mode `)), seen.join("; "))
      checkedTheCheck = true
    }
    fs.rmSync(bundle, { recursive: true, force: true })
  }
  assert.ok(checkedTheCheck && compared >= 100, `only ${compared} entries compared`)
})

test("cas-migrator as a container image: docker load of dist/cas-migrator-image.tar, then docker run on a golden root writes the golden's helper files", { skip: DOCKER_SKIP }, () => {
  const base = tempDir("container-image")
  const dist = path.join(base, "dist")
  const built = spawnSync("bun", [path.join(repo, "build.ts"), "--only", "glibc", "--outdir", dist], { encoding: "utf8" })
  assert.equal(built.status, 0, built.stderr)
  const image = path.join(dist, "cas-migrator-image.tar")
  const members = sh(`tar -tf "$1"`, image).split("\n")
  assert.ok(members.includes("manifest.json") && members.includes("repositories"), "both the 1.10+ and the <= 1.9 layout")
  const root = extractGolden("vfs")
  const layers = (JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as {
    layers: Record<string, { diff_id?: string; path: string }>
  }).layers
  withDockerd(path.join(base, "data"), "vfs", ({ docker }) => {
    assert.match(docker("load", "-i", image), /cas-migrator:latest/)
    docker("run", "--rm", "--network", "none", "-v", `${root}:/var/lib/docker`, "cas-migrator")
    for (const [id, layer] of Object.entries(layers)) {
      if (layer.diff_id === undefined || layer.path === "fallback" || layer.path === "preexisting") continue
      assert.equal(fs.readFileSync(path.join(root, "graph", id, ".migration-diffid"), "utf8"), layer.diff_id, `layer ${id}`)
    }
  })
})

test("bad input: an existing output is refused (--force replaces it), a missing directory, a full disk and an unknown ID are clear errors that leave nothing", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = vfsGolden()
  const base = tempDir("export-bad")
  const out = path.join(base, "out.tar")
  fs.writeFileSync(out, "precious")
  const refused = runCli(["export", "--graph", root, "--output", out, "--json", "busybox:1.0"])
  assert.equal(refused.code, 2)
  assert.match((JSON.parse(refused.stdout) as { fatal: string }).fatal, /already exists/)
  assert.equal(fs.readFileSync(out, "utf8"), "precious")
  assert.equal(runCli(["export", "--graph", root, "--output", out, "--force", "busybox:1.0"]).code, 0)
  assert.notEqual(fs.readFileSync(out, "utf8").slice(0, 8), "precious")

  const missing = runCli(["export", "--graph", root, "--output", path.join(base, "no/such/dir/out.tar")])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /no\/such\/dir: .*no such file/i)

  const ambiguous = runCli(["export", "--graph", root, "--output", path.join(base, "a.tar"), "--json", "0c497e10148b"])
  const prefix = (JSON.parse(ambiguous.stdout) as { unresolved: Array<{ reason: string }> }).unresolved
  assert.equal(ambiguous.code, 1)
  assert.ok(prefix.length === 1, ambiguous.stdout)

  const small = path.join(base, "small")
  fs.mkdirSync(small)
  sh(`mount -t tmpfs -o size=1m tmpfs "$1"`, small)
  try {
    const full = runCli(["export", "--graph", root, "--output", path.join(small, "out.tar"), "--json"])
    assert.ok(full.code === 1 || full.code === 2, `exit ${full.code}`)
    assert.match(full.stdout + full.stderr, /ENOSPC|no space/i)
    assert.doesNotMatch(full.stderr, /^\s+at .+:\d+:\d+\)?$/m, "a stack trace")
    // Images whose layers did not fit fail; the archive, if any, is whole and lists exactly the others.
    const left = fs.readdirSync(small)
    assert.ok(left.length === 0 || (left.length === 1 && left[0] === "out.tar"), `left: ${left.join(", ")}`)
    if (left.length === 1) {
      const report = JSON.parse(full.stdout) as Report
      const manifest = JSON.parse(sh(`tar -xOf "$1" manifest.json`, path.join(small, "out.tar"))) as Array<{ Config: string }>
      assert.deepEqual(
        manifest.map((m) => `sha256:${m.Config.replace(".json", "")}`).sort(),
        [...new Set(report.images.filter((i) => i.status === "exported").map((i) => i.imageId!))].sort(),
      )
      assert.ok(report.images.some((i) => i.status === "failed" && /ENOSPC|no space/i.test(i.error ?? "")), "no image failed on the full disk")
    }
  } finally {
    spawnSync("umount", [small])
  }
})

test("image selection: tags normalised as migrate does, digests, unique ID prefixes of 12 or more, ambiguous ones refused, --all adds untagged leaves", () => {
  const a = ("a".repeat(12) + "1".repeat(52)) as GraphId
  const b = ("a".repeat(12) + "2".repeat(52)) as GraphId
  const c = "c".repeat(64) as GraphId
  const ids = [a, b, c]
  const references: Array<LegacyReference> = [
    { name: "docker.io/library/debian", tag: "jessie", repository: "debian", key: "debian:jessie", kind: "tag", v1Id: a },
    { name: "localhost:5000/x", tag: "1", repository: "localhost:5000/x", key: "localhost:5000/x:1", kind: "tag", v1Id: c },
  ]
  const parents = new Map<GraphId, string>([[a, ""], [b, a], [c, ""]])
  const pick = (args: Array<string>, all = false) => selectImages(args, references, ids, parents, all)
  assert.deepEqual(pick(["debian:jessie"]).images.map((i) => i.v1Id), [a])
  assert.deepEqual(pick(["library/debian:jessie"]).images.map((i) => i.v1Id), [a])
  assert.deepEqual(pick(["localhost:5000/x:1"]).images.map((i) => i.v1Id), [c])
  assert.deepEqual(pick(["debian"]).unresolved.map((u) => u.reason), ["no such image in the graph's repositories (debian:latest)"])
  assert.match(pick(["aaaaaaaaaaaa"]).unresolved[0]!.reason, /ambiguous: 2 images/)
  assert.deepEqual(pick(["aaaaaaaaaaaa2"]).images.map((i) => i.v1Id), [b])
  assert.deepEqual(pick([]).images.map((i) => i.v1Id), [a, c])
  assert.deepEqual(pick([], true).images.map((i) => i.v1Id), [a, c, b])
})

const PODMAN_SKIP = !isRoot ? NEEDS_ROOT : !have("podman") || !have("unshare") ? "needs podman (npm test installs it)" : false
if (PODMAN_SKIP !== false) console.warn(`\n*** export: podman load test NOT RUN: ${PODMAN_SKIP} ***\n`)

test("podman load of the docker-archive keeps every image ID, and names short tags localhost/...", { skip: PODMAN_SKIP }, () => {
  const root = vfsGolden()
  const base = tempDir("export-podman")
  const archive = path.join(base, "all.tar")
  const report = JSON.parse(runCli(["export", "--graph", root, "--output", archive, "--json"]).stdout) as Report
  // podman as root writes to /var/lib/containers, /var/tmp and /run: give it its own, in a private mount namespace.
  const podman = (...args: Array<string>) =>
    spawnSync("unshare", ["-m", "podman", "--root", path.join(base, "storage"), "--runroot", path.join(base, "run"), "--storage-driver", "vfs", ...args], {
      encoding: "utf8",
      env: { ...process.env, TMPDIR: base, XDG_RUNTIME_DIR: path.join(base, "xdg"), CONTAINERS_CONF: "/dev/null" },
    })
  const load = podman("load", "-i", archive)
  assert.equal(load.status, 0, load.stderr)
  const images = podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
  assert.equal(images.status, 0, images.stderr)
  const listed = images.stdout.trim().split("\n")
  for (const image of report.images.filter((i) => i.status === "exported")) {
    for (const reference of image.references.filter((r) => !r.includes("@"))) {
      const first = reference.split("/")[0]!
      const name = reference.includes("/") && /[.:]/.test(first) ? reference : `localhost/${reference}`
      assert.ok(listed.includes(`${image.imageId} ${name}`), `${name} ${image.imageId} not in ${listed.join("; ")}`)
    }
  }
})

test("every golden driver exported, then docker load on a fresh overlay2 root (loop-mounted ext4): migrate's IDs and tags, docker save's diffIDs; a busybox graph's image runs", { skip: DOCKER_SKIP }, () => {
  const base = tempDir("export-overlay2")
  withOverlay2Dockerd(base, ({ docker }) => {
    for (const driver of ["aufs", "overlay", "vfs", "btrfs"]) {
      const root = extractGolden(driver)
      const archive = path.join(base, `${driver}.tar`)
      const report = JSON.parse(runCli(["export", "--graph", root, "--output", archive, "--json"]).stdout) as Report
      checkDockerLoad(docker, archive, report, goldenMigrated(path.join(repo, "test/goldens", driver, "expected.json")), driver)
    }
    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((file) => fs.existsSync(file))
    assert.ok(busybox !== undefined, "busybox-static is installed with docker.io")
    const runnable = path.join(base, "runnable", "docker")
    makeGraph(runnable, "vfs", ["--size", "2MiB", "--layers", "2", "--busybox", busybox])
    const archive = path.join(base, "runnable.tar")
    assert.equal(runCli(["export", "--graph", runnable, "--output", archive]).code, 0)
    docker("load", "-i", archive)
    assert.equal(docker("run", "--rm", "--network", "none", "sample/app:latest", "/bin/echo", "ok").trim(), "ok")
  })
})
