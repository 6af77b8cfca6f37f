import type { Config } from '../config/types.js';
import { openStore } from '../store/registry.js';
import type { Store } from '../store/types.js';

/** Opens the configured store for one command and always closes it. */
export async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
