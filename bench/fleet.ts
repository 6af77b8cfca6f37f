/**
 * Ten million users on PostgreSQL (BENCH_OBJECTS, default 10,000,000), against 1,000 in the
 * same run:
 *   - a new assignment's mean time (target: within 1.5x of the 1,000 figure);
 *   - /auth for known users, one compiled instance each (wrk; unchanged: >= 0.9x);
 *   - start-up: loading the whole table into memory, per million rows, and the memory it
 *     takes per assignment (<= 200 bytes; measured in a child with GC forced);
 *   - the resident memory of one `sharder serve` holding the whole table;
 *   - `sharder export` of every row: peak memory flat (<= 1.5x of the export of a tenth as many).
 * The table is bulk-loaded server-side in one INSERT ... SELECT (the statement-level triggers
 * count it once and announce it as one "kind changed" feed row).
 *
 *   npm run build && node --import tsx bench/fleet.ts          (BENCH_OBJECTS=100000 to try it)
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { BucketPolicyInput } from '../src/core/policy.js';
import { validateConfig } from '../src/config/validate.js';
import type { Config } from '../src/config/types.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { resolvePostgres } from '../src/store/postgres/connect.js';
import { startLocalPostgres } from '../test/helpers/postgres.js';
import { meanNewAssignment, median, report, wrk, type BenchRow, type WrkResult } from './lib.js';
import { ROOT, ensureBuilt, sharderDir, startSharder } from './procs.js';

const N = Number(process.env.BENCH_OBJECTS ?? 10_000_000);
const SMALL = 1_000;
const MAX_ENTRIES = N + 1_000_000;
const buckets: BucketPolicyInput[] = ['hub-0', 'hub-1', 'hub-2'].map((name) => ({
  name,
  weight: 1,
  state: 'active' as const,
}));

function log(msg: string): void {
  console.error(`[bench:fleet] ${new Date().toISOString().slice(11, 19)} ${msg}`);
}

function pgConfig(url: string): Extract<Config['database'], { backend: 'postgres' }> {
  return validateConfig({ database: url, kinds: { hub: { buckets: [{ name: 'hub-0' }] } } }, 'bench')
    .database as Extract<Config['database'], { backend: 'postgres' }>;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function childLoad(url: string): Promise<{ before: number; after: number; rows: number; ms: number }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(ROOT, 'bench/fleet-child.ts'), url, String(MAX_ENTRIES)],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: number; after: number; rows: number; ms: number };
}

/** `sharder export` (compiled) to a discarding pipe: peak RSS in bytes, rows/s. */
function runExport(config: string, rows: number): Promise<{ rss: number; rowsPerSecond: number }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(
      '/usr/bin/time',
      ['-f', '%M', process.execPath, join(ROOT, 'bin/sharder.js'), 'export', '--config', config],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let lines = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) lines++;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`export failed (${code}): ${err}`));
      if (lines < rows) return reject(new Error(`export wrote ${lines} lines for ${rows} rows`));
      resolvePromise({
        rss: Number(err.trim().split('\n').at(-1)) * 1024,
        rowsPerSecond: rows / ((performance.now() - t0) / 1000),
      });
    });
  });
}

/** One compiled instance on `url`, started and stopped by the caller: time to its table_loaded line and RSS then. */
async function instance(url: string): Promise<{ loadMs: number; rss: number; target: string; stop(): Promise<void> }> {
  const d = sharderDir({ database: url, cache: { max_entries: MAX_ENTRIES }, store: { timeout_ms: 5000 } });
  const p = await startSharder(d.config);
  const m = await p.logged(/"event":"table_loaded"[^\n]*"ms":(\d+)/);
  return {
    loadMs: Number(m[1]),
    rss: rssOf(p.child.pid!),
    target: `http://127.0.0.1:${p.port}/auth`,
    stop: async () => {
      await p.stop();
      d.cleanup();
    },
  };
}

/** /auth req/s and p99 of each target, runs alternating between them (the machine is shared: noise hits both alike). */
async function authRates(targets: readonly string[], names: number): Promise<{ rps: number; p99: number }[]> {
  const script = join(ROOT, 'bench/names.lua');
  const env = { BENCH_NAMES: String(names) };
  for (const t of targets) await wrk(t, { connections: 32, seconds: 2, script, env });
  const runs = targets.map((): WrkResult[] => []);
  for (let i = 0; i < 3; i++) {
    for (const [k, t] of targets.entries()) runs[k]!.push(await wrk(t, { connections: 32, seconds: 5, script, env }));
  }
  if (runs.flat().some((r) => r.errors > 0)) throw new Error('wrk saw errors');
  return runs.map((rs) => ({ rps: median(rs.map((r) => r.rps)), p99: median(rs.map((r) => r.p99)) }));
}

ensureBuilt();
const server = await startLocalPostgres({ durable: true });
const stores: PostgresStore[] = [];
try {
  const make = async (n: number): Promise<{ url: string; store: PostgresStore; loadSeconds: number }> => {
    const db = `bench_fleet_${n}`;
    await server.admin(`CREATE DATABASE ${db} ENCODING 'UTF8' TEMPLATE template0`);
    const url = server.url(db);
    const store = await PostgresStore.open(resolvePostgres(pgConfig(url), { file: 'bench', env: {} }));
    stores.push(store);
    const t0 = performance.now();
    const loader = new pg.Client({ connectionString: url });
    await loader.connect();
    try {
      await loader.query(
        `INSERT INTO assignments (kind, name, bucket) SELECT 'hub', 'user-' || g, 'hub-' || (g % 3) FROM ` +
          'generate_series(1, $1::int) g',
        [n],
      );
      await loader.query('VACUUM ANALYZE assignments');
    } finally {
      await loader.end();
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    log(`loaded ${n} rows in ${loadSeconds.toFixed(1)} s`);
    return { url, store, loadSeconds };
  };
  const small = await make(SMALL);
  const tenth = await make(N / 10);
  const large = await make(N);

  log('new assignments, alternating between the two databases');
  const [s, l] = await meanNewAssignment([small.store, large.store], 'fleet', buckets, 12, 100);

  log('table load in a child (GC forced)');
  const childLarge = await childLoad(large.url);
  const childSmall = await childLoad(small.url);
  const perEntry =
    (childLarge.after - childLarge.before - (childSmall.after - childSmall.before)) /
    (childLarge.rows - childSmall.rows);

  log('one instance each: start-up, RSS, /auth');
  const instSmall = await instance(small.url);
  const instLarge = await instance(large.url);
  let authSmall: { rps: number; p99: number };
  let authLarge: { rps: number; p99: number };
  try {
    [authSmall, authLarge] = (await authRates([instSmall.target, instLarge.target], SMALL)) as [
      typeof authSmall,
      typeof authLarge,
    ];
  } finally {
    await instSmall.stop();
    await instLarge.stop();
  }

  log('export');
  const exportConfig = (url: string): string => sharderDir({ database: url, log: { level: 'silent' } }).config;
  const expTenth = await runExport(exportConfig(tenth.url), N / 10);
  const expLarge = await runExport(exportConfig(large.url), N);

  const n = N.toLocaleString('en');
  const rows: BenchRow[] = [
    {
      row: `new assignment, mean, ${n} vs ${SMALL.toLocaleString('en')} stored`,
      value: l! * 1000,
      baseline: s! * 1000,
      unit: 'us',
      ratio: l! / s!,
      target: '<= 1.5',
      met: l! / s! <= 1.5,
      note: `fsync on; bulk load of ${n} rows: ${large.loadSeconds.toFixed(0)} s (INSERT ... SELECT, one statement)`,
    },
    {
      row: `/auth known users, ${n} in memory vs ${SMALL.toLocaleString('en')}`,
      value: authLarge.rps,
      baseline: authSmall.rps,
      unit: 'req/s',
      ratio: authLarge.rps / authSmall.rps,
      target: '>= 0.90',
      met: authLarge.rps / authSmall.rps >= 0.9,
      note:
        `wrk, 32 connections, median of 3 x 5 s each, alternating; the same ${SMALL.toLocaleString('en')} names; ` +
        `p99 ${authLarge.p99.toFixed(2)} vs ${authSmall.p99.toFixed(2)} ms`,
    },
    {
      row: `memory per assignment in the table (${childLarge.rows.toLocaleString('en')} loaded)`,
      value: perEntry,
      baseline: 200,
      unit: 'bytes',
      ratio: perEntry / 200,
      target: '<= 200 bytes',
      met: perEntry <= 200,
      note:
        `RSS with GC forced, ${(childLarge.before / 2 ** 20).toFixed(0)} -> ` +
        `${(childLarge.after / 2 ** 20).toFixed(0)} MiB`,
    },
    {
      row: `table load at start, ms per million rows (${n} rows, compiled instance)`,
      value: instLarge.loadMs / (N / 1e6),
      baseline: childLarge.ms / (childLarge.rows / 1e6),
      unit: 'ms',
      ratio: instLarge.loadMs / (N / 1e6) / (childLarge.ms / (childLarge.rows / 1e6)),
      target: 'report',
      met: true,
      note:
        `whole load ${(instLarge.loadMs / 1000).toFixed(1)} s in the instance; baseline: the same load in the ` +
        'GC-forced child',
    },
    {
      row: `RSS of one instance, ${n} vs ${SMALL.toLocaleString('en')} loaded`,
      value: instLarge.rss / 2 ** 20,
      baseline: instSmall.rss / 2 ** 20,
      unit: 'MiB',
      ratio: instLarge.rss / instSmall.rss,
      target: 'report',
      met: true,
      note: 'VmRSS right after the table_loaded line (no GC forced: includes garbage of the load)',
    },
    {
      row: `sharder export, peak RSS, ${n} vs ${(N / 10).toLocaleString('en')} rows`,
      value: expLarge.rss / 2 ** 20,
      baseline: expTenth.rss / 2 ** 20,
      unit: 'MiB',
      ratio: expLarge.rss / expTenth.rss,
      target: '<= 1.5',
      met: expLarge.rss / expTenth.rss <= 1.5,
      note:
        `${expLarge.rowsPerSecond.toFixed(0)} vs ${expTenth.rowsPerSecond.toFixed(0)} rows/s (compiled CLI to a ` +
        'discarding pipe)',
    },
  ];
  report(`fleet-${N}`, rows);
  if (rows.some((r) => !r.met)) process.exitCode = 1;
} finally {
  for (const st of stores) await st.close();
  server.destroy();
}
