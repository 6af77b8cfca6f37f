import type { Config } from '../config/types.js';
import { openStore } from '../store/registry.js';
import type { Store } from '../store/types.js';

/** Opens the configured store for one command (a CLI run) and always closes it: the CLI reaches the store via ops. */
export async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
