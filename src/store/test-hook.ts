/**
 * The one test hook of the stores: a backend registers its driver-level handle here (the
 * SQLite database, the PostgreSQL pool and watchers), and a test that must reach under the
 * Store contract (make counts drift on purpose, read a session setting, seed a million rows
 * fast) asks for it with testHandle(). The Store classes themselves expose no driver object.
 * Only test/ and bench/ call testHandle: what the service needs is in the contract.
 */
import type { Store } from './types.js';

const handles = new WeakMap<Store, unknown>();

/** Called by a backend's constructor. */
export function exposeForTests(store: Store, handle: unknown): void {
  handles.set(store, handle);
}

/**
 * The driver-level handle of a store, of the type its backend documents (SqliteTestHandle,
 * PostgresTestHandle, …). Throws for a store that registered none (a wrapper, a pending store).
 */
export function testHandle<T>(store: Store): T {
  if (!handles.has(store))
    throw new Error(`the ${store.backend} store ${store.location} has no test handle (is it wrapped?)`);
  return handles.get(store) as T;
}
