/**
 * How long the snapshot (store.snapshot_file) takes to write and read a table of N rows:
 * `node --import tsx bench/snapshot-write.ts [N]` (default 1,000,000). Prints one JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { Snapshot, SNAPSHOT_BATCH_ROWS } from '../src/store/snapshot.js';

const n = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'sharder-snapshot-bench-'));
try {
  const table = new Map<string, { name: string }>();
  const buckets = [{ name: 'hub-0' }, { name: 'hub-1' }, { name: 'hub-2' }];
  for (let i = 0; i < n; i++) table.set(`learner-${i}@mooc.example`, buckets[i % 3]!);
  const identity = { location: 'postgres://sharder@db:5432/sharder', systemId: '1', kinds: ['hub'] };
  const file = join(dir, 'snapshot.db');
  const s = Snapshot.open(file, silentLogger());
  s.claim(identity);
  let t0 = performance.now();
  s.replace('hub', { keys: () => table.keys(), peek: (k) => table.get(k) });
  s.close(); // writes the queue in batches of SNAPSHOT_BATCH_ROWS, as the timer would
  const writeMs = performance.now() - t0;
  t0 = performance.now();
  const r = Snapshot.open(file, silentLogger());
  const got = r.read(identity, n);
  const readMs = performance.now() - t0;
  r.close();
  console.log(
    JSON.stringify({
      rows: n,
      read: got?.count,
      write_ms: Math.round(writeMs),
      batch_rows: SNAPSHOT_BATCH_ROWS,
      ms_per_batch: +(writeMs / Math.ceil(n / SNAPSHOT_BATCH_ROWS)).toFixed(2),
      read_ms: Math.round(readMs),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
