/**
 * Mean time of a new (first-time) assignment with 1,000 and with 1,000,000 stored objects, on
 * SQLite and on PostgreSQL, measured in the same run: rounds alternate between the small and
 * the large database so that machine noise hits both alike. Target: the 1M figure within 1.5x
 * of the 1k figure (choosing a bucket reads the small counts table, never the assignments).
 * Also the PostgreSQL throughput of new assignments: one at a time, and a burst of first
 * requests from three instances at once (grouped into shared transactions).
 *
 *   npm run bench:assign
 *
 * PostgreSQL: SHARDER_BENCH_DATABASE_URL (a role allowed to CREATE DATABASE), else a throwaway
 * server started from /usr/lib/postgresql/<version>/bin with durable settings (fsync on).
 * MariaDB: a throwaway mariadbd (test/helpers/mariadb.ts) with innodb_flush_log_at_trx_commit=1.
 * SHARDER_BENCH_BACKENDS=sqlite,postgres,mariadb (the default: all) picks the backends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { BucketPolicyInput } from '../src/core/policy.js';
import { validateConfig } from '../src/config/validate.js';
import type { Config } from '../src/config/types.js';
import { PostgresStore } from '../src/store/postgres/index.js';
import { resolvePostgres } from '../src/store/postgres/connect.js';
import { SqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';
import { startLocalPostgres, type PgServer } from '../test/helpers/postgres.js';
import { startLocalMariadb } from '../test/helpers/mariadb.js';
import mysql from 'mysql2/promise';
import { openStore } from '../src/store/registry.js';
import { meanNewAssignment, report, type BenchRow } from './lib.js';
import { testHandle } from '../src/store/test-hook.js';
import type { SqliteTestHandle } from '../src/store/sqlite/index.js';

const SMALL = 1_000;
const LARGE = 1_000_000;
const ROUNDS = 12;
const PER_ROUND = 100;
const BURST_PER_INSTANCE = 1_000;
const buckets: BucketPolicyInput[] = ['hub-0', 'hub-1', 'hub-2'].map((name) => ({
  name,
  weight: 1,
  state: 'active' as const,
}));

function log(msg: string): void {
  console.error(`[bench:assign] ${msg}`);
}

/** Mean milliseconds of a new assignment on each store (bench/lib.ts). */
const alternate = (stores: Store[], tag: string): Promise<number[]> =>
  meanNewAssignment(stores, tag, buckets, ROUNDS, PER_ROUND);

function sizeRow(backend: string, small: number, large: number, note: string): BenchRow {
  const ratio = large / small;
  return {
    row:
      `${backend}: new assignment, mean, ${LARGE.toLocaleString('en')} vs ` +
      `${SMALL.toLocaleString('en')} stored objects`,
    value: large * 1000,
    baseline: small * 1000,
    unit: 'us',
    ratio,
    target: '<= 1.5',
    met: ratio <= 1.5,
    note,
  };
}

async function sqliteRows(dir: string): Promise<BenchRow[]> {
  const open = (n: number): SqliteStore => {
    const store = SqliteStore.open({ path: join(dir, `assign-${n}.db`), busyTimeoutMs: 5000 });
    const t0 = performance.now();
    // One statement: the count triggers run per row, still in one transaction.
    testHandle<SqliteTestHandle>(store)
      .prepare(
        `
      WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
      INSERT INTO assignments (kind, name, bucket, assigned_at)
      SELECT 'hub', 'bulk-' || n, 'hub-' || (n % 3), 0 FROM g`,
      )
      .run(n);
    testHandle<SqliteTestHandle>(store).exec('ANALYZE');
    log(`sqlite: loaded ${n} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return store;
  };
  const small = open(SMALL);
  const large = open(LARGE);
  try {
    const [s, l] = await alternate([small, large], 'sqlite');
    return [sizeRow('sqlite', s!, l!, 'synchronous=FULL, WAL; each assignment one BEGIN IMMEDIATE transaction')];
  } finally {
    await small.close();
    await large.close();
  }
}

function pgConfig(url: string): Extract<Config['database'], { backend: 'postgres' }> {
  const c = validateConfig({ database: url, kinds: { hub: { buckets: [{ name: 'hub-0' }] } } }, 'bench');
  return c.database as Extract<Config['database'], { backend: 'postgres' }>;
}

async function postgresRows(): Promise<BenchRow[]> {
  let server: PgServer & { destroy?: () => void };
  const external = process.env.SHARDER_BENCH_DATABASE_URL;
  if (external) {
    const u = new URL(external);
    server = {
      url: (db: string) => Object.assign(new URL(u.href), { pathname: `/${db}` }).href,
      admin: async (sql: string) => {
        const c = new pg.Client({ connectionString: external });
        await c.connect();
        try {
          return await c.query(sql);
        } finally {
          await c.end();
        }
      },
    } as unknown as PgServer;
  } else {
    try {
      server = await startLocalPostgres({ durable: true });
    } catch (err) {
      log(`postgres: skipped (${(err as Error).message.split('\n')[0]}); set SHARDER_BENCH_DATABASE_URL`);
      return [];
    }
  }
  const stores: PostgresStore[] = [];
  const dbs: string[] = [];
  const open = async (db: string): Promise<PostgresStore> => {
    const s = await PostgresStore.open(resolvePostgres(pgConfig(server.url(db)), { file: 'bench', env: {} }));
    stores.push(s);
    return s;
  };
  try {
    const make = async (n: number): Promise<PostgresStore> => {
      const db = `bench_assign_${n}_${process.pid}`;
      await server.admin(`CREATE DATABASE ${db} ENCODING 'UTF8' TEMPLATE template0`);
      dbs.push(db);
      const store = await open(db);
      const t0 = performance.now();
      // A connection of its own: the load takes longer than the store's statement timeout.
      const loader = new pg.Client({ connectionString: server.url(db) });
      await loader.connect();
      try {
        // One statement: the statement-level trigger updates the counts once for all rows.
        await loader.query(
          `INSERT INTO assignments (kind, name, bucket) SELECT 'hub', 'bulk-' || g, 'hub-' || (g % 3) FROM ` +
            'generate_series(1, $1::int) g',
          [n],
        );
        await loader.query('VACUUM ANALYZE assignments');
      } finally {
        await loader.end();
      }
      log(`postgres: loaded ${n} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return store;
    };
    const small = await make(SMALL);
    const large = await make(LARGE);
    const [s, l] = await alternate([small, large], 'pg');
    const rows = [
      sizeRow(
        'postgres',
        s!,
        l!,
        'fsync on; each assignment: lookup, then BEGIN, kind lock, re-read + counts, INSERT, ' +
          `COMMIT${external ? '' : ' (local throwaway server)'}`,
      ),
    ];

    // Throughput: three "instances" (stores with their own pools) on the large database, each
    // receiving a burst of distinct first requests at once.
    const instances = [large, await open(dbs[1]!), await open(dbs[1]!)];
    const t0 = performance.now();
    await Promise.all(
      instances.flatMap((inst, k) =>
        Array.from({ length: BURST_PER_INSTANCE }, (_, i) => inst.assign('hub', `burst-${k}-${i}`, buckets)),
      ),
    );
    const burstRate = (instances.length * BURST_PER_INSTANCE) / ((performance.now() - t0) / 1000);
    const counts = [...(await large.counts('hub')).values()];
    const real = [...(await large.realCounts('hub')).values()];
    if (JSON.stringify(counts.sort()) !== JSON.stringify(real.sort()) || Math.max(...counts) - Math.min(...counts) > 1)
      throw new Error(`counts wrong after the burst: ${counts.join(',')} vs ${real.join(',')}`);
    const sequentialRate = 1000 / l!;
    rows.push({
      row:
        `postgres: first assignments/s, burst of ${(instances.length * BURST_PER_INSTANCE).toLocaleString('en')} ` +
        'on 3 instances vs one at a time',
      value: burstRate,
      baseline: sequentialRate,
      unit: 'assign/s',
      ratio: burstRate / sequentialRate,
      target: '>= 3',
      met: burstRate / sequentialRate >= 3,
      note: 'concurrent misses in one instance share one transaction; instances take turns on the kind lock',
    });
    return rows;
  } finally {
    for (const s of stores) await s.close();
    for (const db of dbs) await server.admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
    server.destroy?.();
  }
}

async function mariadbRows(): Promise<BenchRow[]> {
  let server;
  try {
    server = await startLocalMariadb({ durable: true });
  } catch (err) {
    log(`mariadb: skipped (${(err as Error).message.split('\n')[0]})`);
    return [];
  }
  const stores: Store[] = [];
  try {
    const make = async (n: number): Promise<Store> => {
      const db = `bench_assign_${n}`;
      await server.admin(`CREATE DATABASE ${db}`);
      const store = await openStore(
        validateConfig({ database: server.url(db), kinds: { hub: { buckets: [{ name: 'hub-0' }] } } }, 'bench'),
      );
      stores.push(store);
      const t0 = performance.now();
      // A connection of its own: the load takes longer than the store's statement timeout. The
      // row triggers update the counts and the feed per row, in the one statement's transaction.
      const loader = await mysql.createConnection(server.url(db));
      try {
        await loader.query(
          `INSERT INTO assignments (kind, name, bucket, assigned_at) SELECT 'hub', CONCAT('bulk-', seq), ` +
            `CONCAT('hub-', seq % 3), 0 FROM seq_1_to_${n}`,
        );
        await loader.query('ANALYZE TABLE assignments, bucket_counts');
      } finally {
        await loader.end();
      }
      log(`mariadb: loaded ${n} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return store;
    };
    const small = await make(SMALL);
    const large = await make(LARGE);
    const [s, l] = await alternate([small, large], 'mariadb');
    return [
      sizeRow(
        'mariadb',
        s!,
        l!,
        'innodb_flush_log_at_trx_commit=1; each assignment: lookup, then BEGIN, kind row FOR UPDATE, re-read + ' +
          'counts, INSERT, COMMIT (local throwaway server)',
      ),
    ];
  } finally {
    for (const s of stores) await s.close();
    await server.destroy();
  }
}

const BACKENDS = (process.env.SHARDER_BENCH_BACKENDS ?? 'sqlite,postgres,mariadb').split(',').map((b) => b.trim());
const dir = mkdtempSync(join(tmpdir(), 'sharder-bench-'));
try {
  const rows = [
    ...(BACKENDS.includes('sqlite') ? await sqliteRows(dir) : []),
    ...(BACKENDS.includes('postgres') ? await postgresRows() : []),
    ...(BACKENDS.includes('mariadb') ? await mariadbRows() : []),
  ];
  report('assign', rows);
  if (rows.some((r) => !r.met)) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
