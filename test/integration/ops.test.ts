/**
 * The operations module on a real SQLite store: look-ups, moves, deletes, migrations, doctor,
 * audit. The scenarios are in helpers/ops-suite.ts (run on PostgreSQL by ops-postgres.test.ts);
 * import and export: transfer.test.ts; the HTTP and CLI faces: api/cli-admin tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runOpsSuite } from '../helpers/ops-suite.js';
import { SQLITE_OPS, opsFixture, seed, who } from '../helpers/ops.js';

runOpsSuite(SQLITE_OPS);

test('migrate onto buckets named "toString" and "constructor": the report counts them as numbers', async (t) => {
  const f = opsFixture(t, {
    kinds: { hub: { buckets: [{ name: 'old', state: 'draining' }, { name: 'toString' }, { name: 'constructor' }] } },
  });
  seed(f.store, 'hub', 'old', 4);
  const dry = await f.ops.migrate({ from: 'old', dryRun: true, ...who });
  assert.deepEqual(dry.targets, { toString: 2, constructor: 2 });
  const done = await f.ops.migrate({ from: 'old', ...who, skipHubCheck: true, pauseMs: 0 });
  assert.deepEqual(done.targets, { toString: 2, constructor: 2 });
  assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { toString: 2, constructor: 2 });
});
