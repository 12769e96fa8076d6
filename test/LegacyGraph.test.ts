import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { Effect, Result } from "effect"
import type { GraphId } from "../src/Ids.ts"
import { listGraph, ParentIdError, parentFromJson, readParent } from "../src/legacy/LegacyGraph.ts"
import { tempDir } from "./support/cli.ts"

const A = "a".repeat(64)
const B = "b".repeat(64)

test("parent: the <= 1.8 'parent' key", () => {
  assert.equal(parentFromJson(`{"id":"x","parent":"${A}"}`), A)
})

test("parent: the 1.9 'parent_id' digest gives its hex part", () => {
  assert.equal(parentFromJson(`{"parent_id":"sha256:${A}","layer_id":"sha256:${B}"}`), A)
})

test("parent: 'parent' wins over 'parent_id'", () => {
  assert.equal(parentFromJson(`{"parent":"${A}","parent_id":"sha256:${B}"}`), A)
})

test("parent: keys match case-insensitively and the last duplicate wins", () => {
  assert.equal(parentFromJson(`{"Parent":"${A}"}`), A)
  assert.equal(parentFromJson(`{"parent":"${A}","parent":"${B}"}`), B)
})

test("parent: none, empty or null means a base layer", () => {
  assert.equal(parentFromJson("{}"), "")
  assert.equal(parentFromJson('{"parent":""}'), "")
  assert.equal(parentFromJson('{"parent":null}'), "")
  assert.equal(parentFromJson("null"), "")
})

test("parent: a parent_id without an algorithm is an error (Docker panicked)", () => {
  assert.throws(() => parentFromJson(`{"parent_id":"${A}"}`), ParentIdError)
})

test("parent: bad JSON and wrongly typed parents are errors", () => {
  assert.throws(() => parentFromJson("{"))
  assert.throws(() => parentFromJson('{"parent":5}'))
  assert.throws(() => parentFromJson("[]"))
})

const makeGraph = (entries: Record<string, Record<string, string>>): string => {
  const root = tempDir("legacy-graph")
  for (const [dir, files] of Object.entries(entries)) {
    fs.mkdirSync(path.join(root, "graph", dir), { recursive: true })
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(root, "graph", dir, name), content)
  }
  return root
}

test("a non-empty graph/<id>/parent file wins over the JSON", async () => {
  const root = makeGraph({ [A]: { json: `{"parent_id":"sha256:${B}"}`, parent: "c".repeat(64) } })
  assert.equal(await Effect.runPromise(readParent(root, A as GraphId)), "c".repeat(64))
  fs.rmSync(root, { recursive: true })
})

test("an empty graph/<id>/parent file is ignored", async () => {
  const root = makeGraph({ [A]: { json: `{"parent_id":"sha256:${B}"}`, parent: "" } })
  assert.equal(await Effect.runPromise(readParent(root, A as GraphId)), B)
  fs.rmSync(root, { recursive: true })
})

test("a missing json is a GraphError naming the file", async () => {
  const root = makeGraph({ [A]: {} })
  const result = await Effect.runPromise(Effect.result(readParent(root, A as GraphId)))
  assert.ok(Result.isFailure(result))
  assert.match(result.failure.message, new RegExp(`${A}/json: no such file`))
  fs.rmSync(root, { recursive: true })
})

test("the graph listing keeps 64-hex names in byte order and ignores the rest", async () => {
  const root = makeGraph({ [B]: {}, [A]: {}, _tmp: {}, "NOT-AN-ID": {}, [A.slice(0, 12)]: {}, [A.toUpperCase()]: {} })
  const listing = await Effect.runPromise(listGraph(root))
  assert.deepEqual(listing.ids, [A, B])
  assert.deepEqual([...listing.ignored].sort(), ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "NOT-AN-ID", "_tmp", "aaaaaaaaaaaa"])
  fs.rmSync(root, { recursive: true })
})
