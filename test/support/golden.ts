/**
 * Comparing what `migrate` left in a Docker root with what Docker's own
 * migration left (a golden's `expected.json`), file by file.
 *
 * @module
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"

export interface Expected {
  readonly image_dir_manifest: {
    readonly root: string
    readonly files: Record<string, { readonly mode: string; readonly sha256: string; readonly sha256_of?: string }>
    readonly dirs: Record<string, { readonly mode: string }>
  }
  readonly other_outputs: Record<string, { readonly mode: string; readonly sha256: string; readonly sha256_of?: string }>
  readonly migration_v1_images: Record<string, string>
}

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")
const mode = (file: string) => (fs.statSync(file).mode & 0o7777).toString(8).padStart(4, "0")
const digestOf = (file: string, of: string | undefined) =>
  sha(of === "decompressed" ? gunzipSync(fs.readFileSync(file)) : fs.readFileSync(file))

/** Every difference between what migrate left and what Docker's migration left. */
/** Every difference, mode or content, missing or extra; `store` renames `image/<driver>` (a golden migrated on another driver). */
export const differences = (root: string, expected: Expected, store?: { readonly from: string; readonly to: string }): Array<string> => {
  const here = (rel: string) => (store === undefined ? rel : rel.replace(store.from, store.to))
  const problems: Array<string> = []
  const manifest = expected.image_dir_manifest
  for (const [rel, spec] of Object.entries({ ...manifest.files, ...expected.other_outputs })) {
    const file = path.join(root, here(rel))
    if (!fs.existsSync(file)) {
      problems.push(`${rel}: missing`)
      continue
    }
    if (mode(file) !== spec.mode) problems.push(`${rel}: mode ${mode(file)}, want ${spec.mode}`)
    if (digestOf(file, spec.sha256_of) !== spec.sha256) problems.push(`${rel}: content differs`)
  }
  for (const [rel, spec] of Object.entries(manifest.dirs)) {
    const dir = path.join(root, here(rel))
    if (!fs.existsSync(dir)) problems.push(`${rel}/: missing`)
    else if (mode(dir) !== spec.mode) problems.push(`${rel}/: mode ${mode(dir)}, want ${spec.mode}`)
  }
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const full = path.join(dir, name)
      const rel = store === undefined ? path.relative(root, full) : path.relative(root, full).replace(store.to, store.from)
      if (!(rel in manifest.files) && !(rel in manifest.dirs)) problems.push(`${rel}: not written by Docker`)
      if (fs.lstatSync(full).isDirectory()) walk(full)
    }
  }
  walk(path.join(root, here(manifest.root)))
  return problems
}
