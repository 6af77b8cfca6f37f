/**
 * Child of bench/fleet.ts: loads the whole assignment table of kind hub from a PostgreSQL
 * database through the real AssignmentTable (as `sharder serve` does at start) and reports
 * resident memory before and after, with GC forced, and how long the load took.
 *
 *   node --expose-gc --import tsx bench/fleet-child.ts URL MAX_ENTRIES
 */
import { validateConfig } from '../src/config/validate.js';
import type { Config } from '../src/config/types.js';
import { silentLogger } from '../src/log.js';
import { rssAfterGc } from './lib.js';
import { Assigner } from '../src/core/assigner.js';
import { applyKinds, type KindRuntime } from '../src/core/buckets.js';
import { AssignmentTable } from '../src/core/table.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { resolvePostgres } from '../src/store/postgres/connect.js';

const [url, maxText] = process.argv.slice(2) as [string, string];
const config = validateConfig(
  {
    database: url,
    cache: { max_entries: Number(maxText) },
    kinds: { hub: { buckets: [0, 1, 2].map((i) => ({ name: `hub-${i}` })) } },
  },
  'bench',
);
const store = await PostgresStore.open(
  resolvePostgres(config.database as Extract<Config['database'], { backend: 'postgres' }>, { file: 'bench', env: {} }),
);
const kinds = new Map<string, KindRuntime>();
applyKinds(kinds, config.kinds, config.cache.maxEntries);
const assigner = new Assigner(store, silentLogger(), () => 5000);
const table = new AssignmentTable({ store, kinds: () => kinds, assigner, log: silentLogger() });

const rss = rssAfterGc;
const before = rss();
const t0 = performance.now();
table.loadNew();
await table.whenLoaded();
const ms = performance.now() - t0;
const after = rss();
console.log(JSON.stringify({ before, after, rows: kinds.get('hub')!.cache.size, ms }));
table.stop();
await store.close();
