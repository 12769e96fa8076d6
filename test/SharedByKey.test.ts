/**
 * One resource per key, shared by concurrent users: made once, destroyed after
 * the last release, and never made again while its previous self is still
 * being destroyed (a dm device name is taken until `dmsetup remove` returns).
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import { sharedByKey } from "../plugins/SharedByKey.ts"

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

test("concurrent users share one resource, destroyed after the last release", async () => {
  const events: Array<string> = []
  let made = 0
  const shared = sharedByKey((key: string) => {
    events.push(`make ${key}`)
    return Promise.resolve(`${key}#${++made}`)
  }, (resource) => Promise.resolve(void events.push(`destroy ${resource}`)))
  const [a, b] = await Promise.all([shared.acquire("x"), shared.acquire("x")])
  assert.equal(a, "x#1")
  assert.equal(b, "x#1")
  await shared.release("x")
  assert.deepEqual(events, ["make x"])
  await shared.release("x")
  assert.deepEqual(events, ["make x", "destroy x#1"])
})

test("a resource is made again only after its previous one is destroyed", async () => {
  const events: Array<string> = []
  let made = 0
  const shared = sharedByKey((key: string) => {
    events.push(`make ${key}`)
    return Promise.resolve(`${key}#${++made}`)
  }, async (resource) => {
    events.push(`destroying ${resource}`)
    await tick(30)
    events.push(`destroyed ${resource}`)
  })
  await shared.acquire("x")
  const releasing = shared.release("x")
  const again = shared.acquire("x")
  assert.equal(await again, "x#2")
  await releasing
  assert.deepEqual(events, ["make x", "destroying x#1", "destroyed x#1", "make x"])
})

test("a resource that could not be made is tried again by the next user, and nothing is destroyed", async () => {
  let attempts = 0
  const destroyed: Array<string> = []
  const shared = sharedByKey((key: string) => {
    if (++attempts === 1) return Promise.reject(new Error("busy"))
    return Promise.resolve(key)
  }, (resource) => Promise.resolve(void destroyed.push(resource)))
  await assert.rejects(shared.acquire("x"), /busy/)
  await shared.release("x")
  assert.equal(await shared.acquire("x"), "x")
  await shared.release("x")
  assert.deepEqual(destroyed, ["x"])
})
