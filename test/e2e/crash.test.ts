/**
 * Crash safety: `sharder serve` killed with SIGKILL in the middle of 2,000 concurrent first
 * requests, on SQLite and on PostgreSQL. After a restart every name that was answered 200
 * still maps to the bucket it was told, there is one row per name, and the kept counts equal
 * the real ones (what `doctor` checks). Figures go to the test's diagnostics.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, request } from 'undici';
import Database from 'better-sqlite3';
import { PG_SKIP, freshDatabase, sqlClient, stopSharedPostgres } from '../helpers/postgres.js';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedPostgres);

const NAMES = 2000;
/** Kill once this many first requests were answered: well inside the burst. */
const KILL_AFTER = 400;

interface Reporting extends HasAfter {
  diagnostic(msg: string): void;
}

interface Checks {
  rows(): Promise<Map<string, string>>;
  duplicates(): Promise<number>;
  /** [kept, real] counts per bucket, both sorted by bucket, zero counts left out. */
  counts(): Promise<[Array<[string, number]>, Array<[string, number]>]>;
}

async function crashScenario(t: Reporting, configFile: string, checks: Checks): Promise<void> {
  const first = await spawnServe(t, configFile);
  const agent = new Agent({ connections: 500, keepAliveTimeout: 10_000 });
  t.after(() => agent.destroy());
  const told = new Map<string, string>();
  let failed = 0;
  let killed: Promise<unknown> | undefined;
  const kill = (child: ChildProcess): void => {
    if (killed) return;
    killed = once(child, 'exit');
    child.kill('SIGKILL');
  };
  const names = Array.from({ length: NAMES }, (_, i) => `crash-${i}@example.org`);
  await Promise.all(
    names.map(async (name) => {
      try {
        const r = await request(`${first.url}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
        await r.body.dump();
        if (r.statusCode === 200) {
          told.set(name, String(r.headers['x-shard-bucket']));
          if (told.size >= KILL_AFTER) kill(first.child);
        } else failed++;
      } catch {
        failed++; // the connection died with the server: the client was told nothing
      }
    }),
  );
  await killed;
  assert.equal(first.child.signalCode, 'SIGKILL', 'the server was killed, not finished');
  assert.ok(told.size >= KILL_AFTER && told.size < NAMES, `killed mid-burst (${told.size} of ${NAMES} answered)`);

  const second = await spawnServe(t, configFile);
  const rows = await checks.rows();
  for (const [name, bucket] of told) assert.equal(rows.get(name), bucket, `${name} was told ${bucket}`);
  for (const [name, bucket] of told) {
    const r = await request(`${second.url}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-shard-bucket'], bucket, `${name} after the restart`);
  }
  assert.equal(await checks.duplicates(), 0, 'one row per name');
  const [kept, real] = await checks.counts();
  assert.deepEqual(kept, real, 'kept counts equal real counts');
  assert.equal(
    real.reduce((s, [, n]) => s + n, 0),
    rows.size,
  );
  second.child.kill('SIGTERM');
  t.diagnostic(
    `sent ${NAMES} first requests, ${told.size} answered 200 before SIGKILL, ${failed} cut off; ${rows.size} ` +
      `rows stored; ${told.size} names checked after restart (SQL and /auth): all kept their bucket`,
  );
}

test('SIGKILL during 2,000 concurrent first requests on SQLite: every answered name keeps its bucket, counts exact', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
  const db = (): Database.Database => new Database(join(dir, 'sharder.db'), { readonly: true, fileMustExist: true });
  const query = <T>(fn: (d: Database.Database) => T): T => {
    const d = db();
    try {
      return fn(d);
    } finally {
      d.close();
    }
  };
  await crashScenario(t, file, {
    rows: async () =>
      query(
        (d) =>
          new Map(
            (
              d.prepare("SELECT name, bucket FROM assignments WHERE kind = 'hub'").all() as {
                name: string;
                bucket: string;
              }[]
            ).map((r) => [r.name, r.bucket]),
          ),
      ),
    duplicates: async () =>
      query(
        (d) =>
          (
            d
              .prepare('SELECT COUNT(*) AS n FROM (SELECT 1 FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1)')
              .get() as { n: number }
          ).n,
      ),
    counts: async () =>
      query((d) => [
        (
          d
            .prepare("SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count <> 0 ORDER BY bucket")
            .all() as { bucket: string; count: number }[]
        ).map((r) => [r.bucket, r.count]),
        (
          d
            .prepare(
              "SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket",
            )
            .all() as { bucket: string; count: number }[]
        ).map((r) => [r.bucket, r.count]),
      ]),
  });
});

test(
  'SIGKILL during 2,000 concurrent first requests on PostgreSQL: every answered name keeps its bucket, counts exact',
  { skip: PG_SKIP },
  async (t) => {
    const dir = tempDir(t);
    const pgdb = await freshDatabase(t);
    const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info' }, database: pgdb.url }));
    const sql = async () => sqlClient(t, pgdb.url);
    await crashScenario(t, file, {
      rows: async () =>
        new Map(
          (
            await (
              await sql()
            ).query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
          ).rows.map((r) => [r.name, r.bucket]),
        ),
      duplicates: async () =>
        Number(
          (
            await (
              await sql()
            ).query<{ n: string }>(
              'SELECT COUNT(*) AS n FROM (SELECT 1 FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1) d',
            )
          ).rows[0]!.n,
        ),
      counts: async () => {
        const c = await sql();
        const kept = (
          await c.query<{ bucket: string; count: string }>(
            "SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count <> 0 ORDER BY bucket",
          )
        ).rows.map((r): [string, number] => [r.bucket, Number(r.count)]);
        const real = (
          await c.query<{ bucket: string; count: string }>(
            "SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket",
          )
        ).rows.map((r): [string, number] => [r.bucket, Number(r.count)]);
        return [kept, real];
      },
    });
  },
);
