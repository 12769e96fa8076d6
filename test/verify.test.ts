/**
 * `verify` on the migrated vfs golden: what it reports there is exactly the
 * golden's own known faults (a layer whose pre-existing helper files lie,
 * containers Docker 1.10 left without a mount or with an older
 * config.v2.json); each corruption of the store adds a problem naming the
 * item; and a store written by a real dockerd 20.10 (docker load, docker
 * build FROM scratch, docker create) is sound.
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { gunzipSync } from "node:zlib"
import { haveDockerd, withDockerd } from "./support/dockerd.ts"
import { extractGolden, isRoot, makeGraph, repo, runCli, sh, tempDir } from "./support/cli.ts"

const NEEDS_ROOT = "needs root: the golden holds device nodes, uid 3000000 files and trusted.* xattrs"
if (!isRoot) console.warn(`\n*** verify tests NOT RUN: ${NEEDS_ROOT} ***\n`)

interface Problem {
  readonly kind: string
  readonly item: string
  readonly file: string
  readonly problem: string
}
const verify = (root: string, ...args: Array<string>) => {
  const run = runCli(["verify", "--graph", root, "--json", ...args])
  const report = JSON.parse(run.stdout) as { exitCode: number; problems: Array<Problem> }
  assert.equal(report.exitCode, run.code)
  return { code: run.code, problems: report.problems, stderr: run.stderr }
}
const key = (p: Problem) => `${p.kind} ${p.item} ${p.file}: ${p.problem}`

let migrated: string | undefined
const migratedGolden = () => {
  if (migrated === undefined) {
    migrated = extractGolden("vfs")
    runCli(["migrate", "--graph", migrated])
  }
  return migrated
}
const copyOf = (root: string) => {
  const copy = path.join(tempDir("verify-copy"), "docker")
  sh(`cp -a "$1" "$2"`, root, copy)
  return copy
}

test("the migrated vfs golden: verify reports exactly the golden's own faults", { skip: isRoot ? false : NEEDS_ROOT }, () => {
  const root = migratedGolden()
  const { code, problems } = verify(root)
  assert.equal(code, 1)
  const expected = JSON.parse(fs.readFileSync(path.join(repo, "test/goldens/vfs/expected.json"), "utf8")) as {
    layers: Record<string, { path: string; diff_id?: string }>
    containers: Record<string, { mount: unknown; config_v2_image: string | null; config_v2_preexisting?: boolean }>
  }
  const lyingLayers = Object.values(expected.layers).filter((l) => l.path === "preexisting").map((l) => l.diff_id)
  const faultyContainers = Object.entries(expected.containers)
    .filter(([, c]) => c.config_v2_image !== null && (c.mount === null || c.config_v2_preexisting === true))
    .map(([id]) => id)
  for (const p of problems) {
    const known = (p.kind === "layer" && lyingLayers.some((d) => d !== undefined && p.item === d)) ||
      (p.kind === "container" && faultyContainers.includes(p.item))
    assert.ok(known, `unexpected: ${key(p)}`)
  }
  for (const id of faultyContainers) assert.ok(problems.some((p) => p.item === id), `container ${id} not reported`)
  assert.equal(verify(root, "--quick").problems.filter((p) => p.kind === "layer").length, 0, "--quick hashed layer data")
})

/** Each corruption, applied to a copy of the migrated golden, and what verify must then say. */
const CORRUPTIONS: Record<string, { readonly apply: (root: string, t: Targets) => string; readonly says: RegExp; readonly quick?: boolean }> = {
  "a byte changed in a layer file": {
    apply: (_root, t) => {
      const file = t.layerFile
      const bytes = fs.readFileSync(file)
      bytes[0] = bytes[0]! ^ 0xff
      fs.writeFileSync(file, bytes)
      return t.layer
    },
    says: /its tar cannot be rebuilt: .*integrity checksum failed/,
  },
  "a missing layer directory": {
    apply: (root, t) => (fs.rmSync(path.join(root, "vfs/dir", t.cacheId), { recursive: true }), t.layer),
    says: /is not in the vfs driver/,
    quick: true,
  },
  "a removed tar-split.json.gz": {
    apply: (_root, t) => (fs.rmSync(path.join(t.layerDir, "tar-split.json.gz")), t.layer),
    says: /^missing$/,
    quick: true,
  },
  "a corrupt tar-split.json.gz": {
    apply: (_root, t) => (fs.writeFileSync(path.join(t.layerDir, "tar-split.json.gz"), "not gzip"), t.layer),
    says: /its tar cannot be rebuilt/,
  },
  "a changed diff": {
    apply: (_root, t) => (fs.writeFileSync(path.join(t.layerDir, "diff"), `sha256:${"1".repeat(64)}`), t.layer),
    says: /chain ID is not SHA-256|hashes to/,
    quick: true,
  },
  "a size with a trailing newline": {
    apply: (_root, t) => (fs.appendFileSync(path.join(t.layerDir, "size"), "\n"), t.layer),
    says: /not a decimal size/,
    quick: true,
  },
  "a missing parent": {
    apply: (_root, t) => (fs.rmSync(path.join(t.layerDir, "parent")), t.layer),
    says: /a parent file missing/,
    quick: true,
  },
  "one byte changed in an image config": {
    apply: (_root, t) => {
      const bytes = fs.readFileSync(t.configFile)
      bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x01
      fs.writeFileSync(t.configFile, bytes)
      return t.image
    },
    says: /its content hashes to sha256:[0-9a-f]{64}, not to its name/,
    quick: true,
  },
  "a dangling tag": {
    apply: (root, _t) => {
      const file = path.join(root, "image/vfs/repositories.json")
      const repositories = JSON.parse(fs.readFileSync(file, "utf8")) as { Repositories: Record<string, Record<string, string>> }
      repositories.Repositories["dangling"] = { "dangling:tag": `sha256:${"2".repeat(64)}` }
      fs.writeFileSync(file, JSON.stringify(repositories))
      return "dangling:tag"
    },
    says: /names sha256:2{64}, which is not in the image store/,
    quick: true,
  },
  "a container whose mount is missing": {
    apply: (root, t) => (fs.rmSync(path.join(root, "image/vfs/layerdb/mounts", t.container), { recursive: true }), t.container),
    says: /its mount is not in layerdb\/mounts/,
    quick: true,
  },
  "a container whose image is missing": {
    apply: (root, t) => (fs.rmSync(path.join(root, "image/vfs/imagedb/content/sha256", t.containerImage.slice(7))), t.container),
    says: /its image sha256:[0-9a-f]{64} is not in the image store/,
    quick: true,
  },
}

interface Targets {
  readonly layer: string
  readonly layerDir: string
  readonly cacheId: string
  readonly layerFile: string
  readonly image: string
  readonly configFile: string
  readonly container: string
  readonly containerImage: string
}

/** A non-base layer with a non-empty file, an image, and a container with a mount, in a migrated root. */
const targets = (root: string, clean: ReadonlyArray<Problem>): Targets => {
  const layerdb = path.join(root, "image/vfs/layerdb/sha256")
  const bad = new Set(clean.map((p) => p.item))
  for (const hex of fs.readdirSync(layerdb).sort()) {
    const layerDir = path.join(layerdb, hex)
    if (!fs.existsSync(path.join(layerDir, "parent")) || bad.has(`sha256:${hex}`)) continue
    const cacheId = fs.readFileSync(path.join(layerDir, "cache-id"), "utf8")
    const files = sh(`find "$1" -type f -size +0 2>/dev/null | head -200`, path.join(root, "vfs/dir", cacheId)).trim().split("\n")
    const tarSplit = new TextDecoder().decode(spawnSync("gzip", ["-dc", path.join(layerDir, "tar-split.json.gz")]).stdout)
    const layerFile = files.find((f) => f !== "" && tarSplit.includes(`"name":${JSON.stringify(path.relative(path.join(root, "vfs/dir", cacheId), f))}`))
    if (layerFile === undefined) continue
    const contentDir = path.join(root, "image/vfs/imagedb/content/sha256")
    const imageHex = fs.readdirSync(contentDir).find((h) => !bad.has(`sha256:${h}`))!
    const mounts = fs.readdirSync(path.join(root, "image/vfs/layerdb/mounts"))
    const container = mounts.find((id) => fs.existsSync(path.join(root, "containers", id, "config.v2.json")) && !bad.has(id))!
    const containerImage = (JSON.parse(fs.readFileSync(path.join(root, "containers", container, "config.v2.json"), "utf8")) as { Image: string }).Image
    return {
      layer: `sha256:${hex}`,
      layerDir: layerDir.replace(root, "ROOT"),
      cacheId,
      layerFile: layerFile.replace(root, "ROOT"),
      image: `sha256:${imageHex}`,
      configFile: path.join(contentDir, imageHex).replace(root, "ROOT"),
      container,
      containerImage,
    }
  }
  throw new Error("no layer with a parent and a non-empty file")
}

for (const [name, corruption] of Object.entries(CORRUPTIONS)) {
  test(`verify catches ${name}${corruption.quick === true ? " (also with --quick)" : ""}`, { skip: isRoot ? false : NEEDS_ROOT }, () => {
    const clean = verify(migratedGolden()).problems
    const root = copyOf(migratedGolden())
    const found = targets(migratedGolden(), clean)
    const here = Object.fromEntries(Object.entries(found).map(([k, v]) => [k, v.replace("ROOT", root)])) as unknown as Targets
    const item = corruption.apply(root, here)
    for (const args of corruption.quick === true ? [[], ["--quick"]] : [[]]) {
      const { code, problems } = verify(root, ...args)
      assert.equal(code, 1)
      const relative = (p: Problem) => key(p).replaceAll(root, "ROOT").replaceAll(migratedGolden(), "ROOT")
      const added = problems.filter((p) => !clean.some((c) => relative(c) === relative(p)))
      assert.ok(added.some((p) => p.item === item && corruption.says.test(p.problem)), `${name} ${args.join(" ")}: not caught; new problems: ${added.map(key).join("; ")}`)
    }
  })
}

const DOCKER_SKIP = !isRoot ? NEEDS_ROOT : !haveDockerd ? "needs Debian's docker.io (npm test installs it)" : false
if (DOCKER_SKIP !== false) console.warn(`\n*** verify on a real daemon's store NOT RUN: ${DOCKER_SKIP} ***\n`)

test("a store written by a real dockerd 20.10 (docker load, docker build FROM scratch, docker create) is sound; a changed layer byte is caught", { skip: DOCKER_SKIP }, () => {
  const base = tempDir("verify-dockerd")
  const legacy = path.join(base, "legacy", "docker")
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((file) => fs.existsSync(file))!
  makeGraph(legacy, "vfs", ["--size", "2MiB", "--layers", "2", "--busybox", busybox])
  const archive = path.join(base, "images.tar")
  assert.equal(runCli(["export", "--graph", legacy, "--output", archive]).code, 0)
  const data = path.join(base, "data")
  withDockerd(data, "vfs", ({ docker }) => {
    docker("load", "-i", archive)
    const context = path.join(base, "context")
    fs.mkdirSync(context)
    fs.writeFileSync(path.join(context, "hello.txt"), "hello from scratch\n")
    fs.writeFileSync(path.join(context, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n")
    docker("build", "-q", "-t", "scratch-built:1", context)
    docker("create", "--name", "made", "sample/app:latest", "/bin/echo", "ok")
  })
  const sound = verify(data)
  assert.deepEqual(sound.problems.map(key), [])
  assert.equal(sound.code, 0)
  // One byte of a layer file changed: caught.
  const layerdb = path.join(data, "image/vfs/layerdb/sha256")
  // The layer whose own tar holds bin/busybox (on vfs every child's directory has a copy too).
  const owner = fs.readdirSync(layerdb).find((hex) =>
    new TextDecoder().decode(gunzipSync(fs.readFileSync(path.join(layerdb, hex, "tar-split.json.gz")))).includes(`"name":"bin/busybox"`)
  )!
  const withBusybox = path.join(data, "vfs/dir", fs.readFileSync(path.join(layerdb, owner, "cache-id"), "utf8"), "bin/busybox")
  const bytes = fs.readFileSync(withBusybox)
  bytes[100] = bytes[100]! ^ 0xff
  fs.writeFileSync(withBusybox, bytes)
  const broken = verify(data)
  assert.equal(broken.code, 1)
  assert.ok(broken.problems.some((p) => p.kind === "layer" && /integrity checksum failed for "bin\/busybox"/.test(p.problem)), broken.problems.map(key).join("; "))
})

