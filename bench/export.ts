/**
 * Export memory and speed: `sharder export` of 1,000,000 assignments must not need memory for
 * 1,000,000 rows. Runs the real CLI (compiled-free, through tsx) as a child process on SQLite
 * files of 100,000 and 1,000,000 rows, piping its output into a reader that discards it, and
 * compares the peak resident memory (GNU time's %M) of the two runs: the ratio stays near 1
 * when the export streams, and near 10 if it held the rows.
 *
 *   node --import tsx bench/export.ts            (SHARDER_BENCH_ROWS=200000 for a shorter run)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { report, type BenchRow } from './lib.js';
import { testHandle } from '../src/store/test-hook.js';
import type { SqliteTestHandle } from '../src/store/sqlite/index.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIG = Number(process.env.SHARDER_BENCH_ROWS ?? 1_000_000);
const SMALL = Math.max(1000, Math.floor(BIG / 10));

function makeDb(dir: string, rows: number): string {
  const path = join(dir, `export-${rows}.db`);
  const store = SqliteStore.open({ path, busyTimeoutMs: 5000 });
  const insert = testHandle<SqliteTestHandle>(store).prepare(
    'INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES (?, ?, ?, ?)',
  );
  testHandle<SqliteTestHandle>(store).transaction(() => {
    for (let i = 0; i < rows; i++)
      insert.run('hub', `user-${String(i).padStart(8, '0')}@example.org`, `hub-${i % 3}`, 1_700_000_000_000 + i);
  })();
  void store.close();
  const config = join(dir, `export-${rows}.yml`);
  writeFileSync(
    config,
    stringify({
      database: `sqlite:${path}`,
      log: { level: 'silent' },
      kinds: { hub: { buckets: [{ name: 'hub-0' }, { name: 'hub-1' }, { name: 'hub-2' }] } },
    }),
  );
  return config;
}

/** Runs the export; returns peak RSS in KiB, bytes written, and seconds. */
function runExport(config: string): Promise<{ rssKiB: number; bytes: number; seconds: number }> {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%M', process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/run.ts'), 'export', '--config', config],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let bytes = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => (bytes += d.length));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`export failed (${code}): ${err}`));
      resolvePromise({
        rssKiB: Number(err.trim().split('\n').at(-1)),
        bytes,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sharder-bench-export-'));
try {
  const small = await runExport(makeDb(dir, SMALL));
  const big = await runExport(makeDb(dir, BIG));
  const rows: BenchRow[] = [
    {
      row: `peak RSS exporting ${BIG} rows vs ${SMALL} rows`,
      value: big.rssKiB / 1024,
      baseline: small.rssKiB / 1024,
      unit: 'MiB',
      ratio: big.rssKiB / small.rssKiB,
      target: '<= 1.5',
      met: big.rssKiB / small.rssKiB <= 1.5,
      note: `${(big.bytes / 1e6).toFixed(0)} MB of CSV written`,
    },
    {
      row: `export rows per second, ${BIG} vs ${SMALL} rows`,
      value: BIG / big.seconds,
      baseline: SMALL / small.seconds,
      unit: 'rows/s',
      ratio: BIG / big.seconds / (SMALL / small.seconds),
      target: '>= 0.8',
      met: BIG / big.seconds / (SMALL / small.seconds) >= 0.8,
      note: 'includes process start-up (tsx), which weighs more in the small run',
    },
  ];
  report('export', rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
