import assert from "node:assert/strict"
import { test } from "node:test"
import { diffIdFromHex, EMPTY_LAYER_DIFF_ID, parseDiffId, parseGraphId } from "../src/Ids.ts"

const hex = "4d459c9e9b6ddc89797df4e5cc4cd00c2ab36447d436279c32fc458f91da5a63"

test("a graph ID is exactly 64 lower-case hex digits", () => {
  assert.equal(parseGraphId(hex), hex)
  assert.equal(parseGraphId(hex.toUpperCase()), undefined)
  assert.equal(parseGraphId(hex.slice(0, 12)), undefined)
  assert.equal(parseGraphId(hex + "0"), undefined)
  assert.equal(parseGraphId("_tmp"), undefined)
  assert.equal(parseGraphId("NOT-AN-ID"), undefined)
  assert.equal(parseGraphId(hex.slice(0, 63) + "g"), undefined)
})

test("a diffID is sha256: and 64 hex digits", () => {
  assert.equal(parseDiffId(`sha256:${hex}`), `sha256:${hex}`)
  assert.equal(parseDiffId(hex), undefined)
  assert.equal(parseDiffId(`sha512:${hex}`), undefined)
  assert.equal(diffIdFromHex(hex), `sha256:${hex}`)
  assert.throws(() => diffIdFromHex("xyz"))
  assert.equal(parseDiffId(EMPTY_LAYER_DIFF_ID), EMPTY_LAYER_DIFF_ID)
})
