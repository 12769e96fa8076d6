/**
 * One resource per key (a mounted dataset, an active thin device), shared by
 * every view open on it and released when the last one closes: a parent
 * layer is read by each child regenerated against it, at the same time.
 *
 * @module
 */
import { Effect, type Scope } from "effect"

export interface SharedByKey<K, A> {
  /** The resource for `key`, made on first use; each call needs one `release`. */
  readonly acquire: (key: K) => Promise<A>
  /** Gives back one use; the last one releases the resource. */
  readonly release: (key: K) => Promise<void>
  /** One use for the scope (a layer's view): acquired, given back when the scope closes; a failure as `onError` says. */
  readonly scoped: <E>(key: K, onError: (error: unknown) => E) => Effect.Effect<A, E, Scope.Scope>
}

export const sharedByKey = <K, A>(
  make: (key: K) => Promise<A>,
  destroy: (resource: A) => Promise<void>,
): SharedByKey<K, A> => {
  const entries = new Map<K, { readonly resource: Promise<A>; users: number }>()
  // A resource being destroyed still holds its names (a dm device, a mount): a new one waits for it.
  const destroying = new Map<K, Promise<void>>()
  const acquire = (key: K): Promise<A> => {
    let entry = entries.get(key)
    if (entry === undefined) {
      const previous = destroying.get(key)?.catch(() => undefined) ?? Promise.resolve()
      const made = { resource: previous.then(() => make(key)), users: 0 }
      entries.set(key, made)
      made.resource.catch(() => entries.get(key) === made && entries.delete(key))
      entry = made
    }
    entry.users++
    return entry.resource
  }
  const release = async (key: K): Promise<void> => {
    const entry = entries.get(key)
    if (entry === undefined || --entry.users > 0) return
    entries.delete(key)
    const done = entry.resource.then(destroy, () => undefined).finally(() => {
      if (destroying.get(key) === done) destroying.delete(key)
    })
    destroying.set(key, done)
    await done
  }
  return {
    acquire,
    release,
    scoped: (key, onError) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => acquire(key),
          catch: (error) => {
            void release(key) // the use counted for a resource that could not be made
            return onError(error)
          },
        }),
        () => Effect.promise(() => release(key)),
      ),
  }
}
