/**
 * Child of bench/memory.ts: resolves N known names through the real Assigner (cache misses
 * read the seeded store) and reports resident memory before and after, with GC forced.
 * Names are made the way Node makes header values (decoded from bytes), not as literals.
 */
import { Assigner } from '../src/core/assigner.js';
import { applyKinds, type KindRuntime } from '../src/core/buckets.js';
import { silentLogger } from '../src/log.js';
import { rssAfterGc } from './lib.js';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { validateConfig } from '../src/config/validate.js';

const [db, nText, maxText] = process.argv.slice(2) as [string, string, string];
const n = Number(nText);
const config = validateConfig(
  {
    cache: { max_entries: Number(maxText) },
    kinds: { hub: { buckets: [0, 1, 2].map((i) => ({ name: `hub-${i}`, upstream: `http://127.0.0.1:${9000 + i}` })) } },
  },
  'bench',
);
const kinds = new Map<string, KindRuntime>();
applyKinds(kinds, config.kinds, config.cache.maxEntries);
const kind = kinds.get('hub')!;
const store = SqliteStore.open({ path: db, busyTimeoutMs: 5000 });
const assigner = new Assigner(store, silentLogger(), () => 5000);

const rss = rssAfterGc;
const before = rss();
for (let i = 1; i <= n; i++) {
  const name = Buffer.from(`user-${i}`, 'latin1').toString('latin1');
  const r = assigner.resolve(kind, name);
  if (r instanceof Promise) await r;
}
const after = rss();
console.log(JSON.stringify({ before, after, cached: kind.cache.size }));
await store.close();
