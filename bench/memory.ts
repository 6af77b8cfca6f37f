/**
 * Rows 4 and 5: memory per cached assignment (1,000,000 cached; and with a cache bound), and
 * start-up to ready with 1,000,000 stored objects vs an empty store.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { ROOT, ensureBuilt, seed, sharderDir, startSharder } from './procs.js';
import { median, report, type BenchRow } from './lib.js';

const N = Number(process.env.BENCH_OBJECTS ?? 1_000_000);
const BOUND = Math.floor(N / 10);

async function memory(db: string, max: number): Promise<{ before: number; after: number; cached: number }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(ROOT, 'bench/memory-child.ts'), db, String(N), String(max)],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: number; after: number; cached: number };
}

/** Spawn to /readyz 200, in milliseconds. */
async function startup(config: string): Promise<number> {
  const t0 = performance.now();
  const p = await startSharder(config);
  for (;;) {
    const r = await request(`http://127.0.0.1:${p.port}/readyz`);
    await r.body.dump();
    if (r.statusCode === 200) break;
  }
  const ms = performance.now() - t0;
  await p.stop();
  return ms;
}

ensureBuilt();
const full = sharderDir();
const empty = sharderDir();
try {
  seed(full.db, N);
  const unbounded = await memory(full.db, N);
  const bounded = await memory(full.db, BOUND);
  const perEntry = (unbounded.after - unbounded.before) / unbounded.cached;
  const boundedPer = (bounded.after - bounded.before) / N;

  const fullMs: number[] = [];
  const emptyMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    emptyMs.push(await startup(empty.config));
    fullMs.push(await startup(full.config));
  }
  const rows: BenchRow[] = [
    {
      row: `4. memory per cached assignment (${N.toLocaleString('en')} cached)`,
      value: perEntry,
      baseline: 200,
      unit: 'bytes',
      ratio: perEntry / 200,
      target: '<= 200 bytes',
      met: perEntry <= 200,
      note:
        `RSS ${(unbounded.before / 2 ** 20).toFixed(0)} -> ${(unbounded.after / 2 ** 20).toFixed(0)} MiB; with ` +
        `cache.max_entries ${BOUND.toLocaleString('en')}: ${bounded.cached.toLocaleString('en')} cached, ` +
        `${boundedPer.toFixed(1)} bytes per resolved name`,
    },
    {
      row: '4b. cache bound honoured (entries held / bound)',
      value: bounded.cached,
      baseline: BOUND,
      unit: 'entries',
      ratio: bounded.cached / BOUND,
      target: '<= 1.00',
      met: bounded.cached <= BOUND,
    },
    {
      row: `5. start-up to ready, ${N.toLocaleString('en')} stored vs empty`,
      value: median(fullMs),
      baseline: median(emptyMs),
      unit: 'ms',
      ratio: median(fullMs) / median(emptyMs),
      target: '<= 2.0 and < 1000 ms',
      met: median(fullMs) / median(emptyMs) <= 2 && median(fullMs) < 1000,
      note:
        'median of 5; spawn of the compiled sharder to /readyz 200 (the table is loaded after the listener is ' +
        'up; /readyz does not wait for it)',
    },
  ];
  report('memory', rows);
} finally {
  full.cleanup();
  empty.cleanup();
}
