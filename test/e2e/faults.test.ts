/**
 * Database faults: clear errors, known users keep being served, recovery without a restart
 * once the cause is gone, nothing half-written.
 * - SQLite on a full disk (a small tmpfs), on a read-only file system at start, and its file
 *   deleted while the server runs;
 * - PostgreSQL connections killed (pg_terminate_backend) under load, and a statement timeout
 *   while another session holds a lock. (A PostgreSQL restart under load is in
 *   postgres-cluster.test.ts; the SQLite write lock held by another process in
 *   sqlite-busy.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { get } from '../helpers/http.js';
import { PG_SKIP, freshDatabase, sqlClient, stopSharedPostgres } from '../helpers/postgres.js';
import { rawConfig, runCli, runCliProcess, startSharder, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedPostgres);

const AS_ROOT = process.getuid?.() === 0;
const NO_MOUNT = AS_ROOT ? undefined : 'mounting a small tmpfs needs root';

const auth = (url: string, user: string) => get(`${url}/auth`, { REMOTE_USER: user });

/** A tmpfs of `size` mounted in a temporary directory, unmounted afterwards. */
function smallDisk(t: HasAfter, size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sharder-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  t.after(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function sqliteChecks(file: string): { rows: number; kept: number; duplicates: number; integrity: string } {
  const d = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      rows: (d.prepare('SELECT COUNT(*) AS n FROM assignments').get() as { n: number }).n,
      kept: (d.prepare('SELECT COALESCE(SUM(count), 0) AS n FROM bucket_counts').get() as { n: number }).n,
      duplicates: (
        d
          .prepare('SELECT COUNT(*) AS n FROM (SELECT 1 FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1)')
          .get() as { n: number }
      ).n,
      integrity: d.pragma('integrity_check', { simple: true }) as string,
    };
  } finally {
    d.close();
  }
}

test(
  'SQLite, full disk: new users get 503, known ones are served, /readyz is 503 until space is freed, then all succeed',
  { skip: NO_MOUNT },
  async (t) => {
    const disk = smallDisk(t, '4m');
    const s = await startSharder(t, { database: `sqlite:${join(disk, 'sharder.db')}` });
    const told = new Map<string, string>();
    for (let i = 0; i < 50; i++) {
      const r = await auth(s.url, `known-${i}`);
      assert.equal(r.status, 200);
      told.set(`known-${i}`, String(r.headers['x-shard-bucket']));
    }
    assert.equal((await get(`${s.url}/readyz`)).status, 200);
    // Fill the disk to the last byte.
    const filler = join(disk, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": that is the point
    }
    let refused = 0;
    let placed = 0;
    for (let i = 0; i < 400 && refused === 0; i++) {
      const r = await auth(s.url, `new-${i}-${'x'.repeat(200)}`);
      if (r.status === 200) placed++;
      else {
        assert.equal(r.status, 503, r.body);
        assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
        assert.match(JSON.parse(r.body).message, /SQLITE_FULL|full/i);
        refused++;
      }
    }
    assert.ok(refused > 0, `the full disk was never noticed (${placed} placed)`);
    for (const [name, bucket] of told) assert.equal((await auth(s.url, name)).headers['x-shard-bucket'], bucket, name);
    // Readiness says what the assign path sees: not ready, with the same code, however many
    // known users are served meanwhile, and whenever it is asked.
    for (let i = 0; i < 3; i++) {
      const ready = await get(`${s.url}/readyz`);
      assert.equal(ready.status, 503, `readyz while the disk is full: ${ready.body}`);
      assert.equal(JSON.parse(ready.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
      assert.match(JSON.parse(ready.body).message, /SQLITE_FULL|full/i);
      assert.equal((await auth(s.url, 'known-0')).status, 200);
    }
    rmSync(filler);
    // Ready again once space is freed, before any new user comes (none would, to an instance
    // that is not ready).
    const ready = await get(`${s.url}/readyz`);
    assert.equal(ready.status, 200, `readyz after space was freed: ${ready.body}`);
    const r = await auth(s.url, 'after-space-freed');
    assert.equal(r.status, 200, r.body);
    await s.sharder.stop(1000);
    const c = sqliteChecks(join(disk, 'sharder.db'));
    assert.equal(c.integrity, 'ok');
    assert.equal(c.duplicates, 0);
    assert.equal(c.kept, c.rows, 'kept counts equal the rows: nothing half-written');
    assert.equal(c.rows, 50 + placed + 1);
    t.diagnostic(
      `full disk: ${placed} placed before it filled, ${refused} refused with 503, ${told.size} known users ` +
        'served, 1 placed after space was freed',
    );
  },
);

test(
  'SQLite on a read-only file system at start: a clear error naming the file, no stack trace; the CLI says the same',
  { skip: NO_MOUNT },
  async (t) => {
    const disk = smallDisk(t, '4m');
    const file = join(disk, 'sharder.db');
    const dir = tempDir(t);
    const config = writeConfig(dir, rawConfig(dir, { database: `sqlite:${file}` }));
    assert.equal((await runCli(['assign', 'someone', '--config', config])).code, 0);
    execFileSync('mount', ['-o', 'remount,ro', disk]);
    for (const args of [['serve'], ['assign', 'someone-else']]) {
      const run = args[0] === 'serve' ? runCliProcess : runCli;
      const r = await run([...args, '--config', config], { env: { SHARDER_LOG_LEVEL: 'info' } });
      assert.notEqual(r.code, 0, `${args[0]} must fail`);
      const out = r.stdout + r.stderr;
      assert.match(out, /SHARD_ERR_STORE_UNAVAILABLE|store unavailable|cannot open SQLite/i, out);
      assert.ok(out.includes(file), `names the file: ${out}`);
      assert.doesNotMatch(out, /^\s+at /m, 'no stack trace');
    }
    // Once the file system is writable again the known assignment is there, untouched.
    execFileSync('mount', ['-o', 'remount,rw', disk]);
    assert.equal(sqliteChecks(file).rows, 1);
  },
);

describe('PostgreSQL faults', { skip: PG_SKIP }, () => {
  test('connections killed with pg_terminate_backend under load: known users always served, new users recover, no duplicates', async (t) => {
    const db = await freshDatabase(t);
    const s = await startSharder(t, { database: db.url });
    const told = new Map<string, string>();
    for (let i = 0; i < 100; i++) {
      const r = await auth(s.url, `known-${i}`);
      assert.equal(r.status, 200);
      told.set(`known-${i}`, String(r.headers['x-shard-bucket']));
    }
    const sql = await sqlClient(t, db.url);
    const statuses = new Map<string, number>();
    let stop = false;
    let n = 0;
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const i = n++;
        const name = i % 2 === 0 ? `known-${i % 100}` : `new-${i}`;
        const r = await auth(s.url, name);
        if (name.startsWith('known')) {
          assert.equal(r.status, 200, `${name}: ${r.body}`);
          assert.equal(r.headers['x-shard-bucket'], told.get(name));
        } else if (r.status === 200) told.set(name, String(r.headers['x-shard-bucket']));
        else assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_STORE_UNAVAILABLE', r.body);
        const k = `${name.split('-')[0]} ${r.status}`;
        statuses.set(k, (statuses.get(k) ?? 0) + 1);
      }
    });
    let killed = 0;
    // Each kill lands on a store in use: 100 more requests answered before it, and after the last.
    const ran = (more: number): Promise<number> => {
      const at = n;
      return until(() => n >= at + more, 10_000, `${more} more requests under load`);
    };
    for (let round = 0; round < 5; round++) {
      await ran(100);
      const r = await sql.query<{ pid: number }>(
        'SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [db.name],
      );
      killed += r.rowCount ?? 0;
    }
    await ran(100);
    const fresh = await auth(s.url, 'after-the-kills');
    stop = true;
    await Promise.all(loops);
    assert.equal(fresh.status, 200, `recovered without a restart: ${fresh.body}`);
    told.set('after-the-kills', String(fresh.headers['x-shard-bucket']));
    assert.ok(killed >= 5, `${killed} backends terminated`);
    const rows = new Map(
      (
        await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
      ).rows.map((r) => [r.name, r.bucket]),
    );
    for (const [name, bucket] of told) assert.equal(rows.get(name), bucket, name);
    const kept = (
      await sql.query<{ n: string }>("SELECT COALESCE(SUM(count), 0) AS n FROM bucket_counts WHERE kind = 'hub'")
    ).rows[0]!.n;
    assert.equal(Number(kept), rows.size, 'kept counts equal the rows');
    t.diagnostic(`pg_terminate_backend x5 (${killed} backends): ${JSON.stringify(Object.fromEntries(statuses))}`);
  });

  test('a statement timeout while another session holds a lock: a clear 503 for new users, known users served, success once released', async (t) => {
    const db = await freshDatabase(t);
    const s = await startSharder(t, {
      database: db.url,
      postgres: { statement_timeout_ms: 500 },
      store: { poll_ms: 50, timeout_ms: 3000 },
    });
    assert.equal((await auth(s.url, 'known')).status, 200);
    const locker = await sqlClient(t, db.url);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE bucket_counts IN ACCESS EXCLUSIVE MODE');
    const r = await auth(s.url, 'blocked-newcomer');
    assert.equal(r.status, 503, r.body);
    assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
    assert.equal((await auth(s.url, 'known')).status, 200, 'a known user is served meanwhile');
    await locker.query('ROLLBACK');
    const after = await auth(s.url, 'blocked-newcomer');
    assert.equal(after.status, 200, after.body);
    const sql = await sqlClient(t, db.url);
    assert.equal((await sql.query("SELECT 1 FROM assignments WHERE name = 'blocked-newcomer'")).rowCount, 1);
    t.diagnostic(`statement timeout: ${JSON.parse(r.body).message}`);
  });
});

describe('PostgreSQL read-only', { skip: PG_SKIP }, () => {
  test('a database that turns read-only (as a standby after failover): new users get 503, /readyz is 503 until it is writable again, then new users succeed', async (t) => {
    const db = await freshDatabase(t);
    const s = await startSharder(t, { database: db.url, store: { poll_ms: 50, timeout_ms: 3000 } });
    assert.equal((await auth(s.url, 'known')).status, 200);
    const sql = await sqlClient(t, db.url);
    // Every new session of the database is read-only; end the current ones so the pool reconnects.
    const reconnect = async (): Promise<void> => {
      await sql.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> ' +
          'pg_backend_pid()',
      );
    };
    await sql.query(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
    await reconnect();
    // A pooled connection killed just now can fail one request with 57P01 before the pool
    // drops it: wait for the refusal that comes from the read-only database itself.
    const readOnly = /25006|read-only/;
    let i = 0;
    let refused = { status: 0, body: '' };
    await until(
      async () => {
        refused = await auth(s.url, `newcomer-${i++}`);
        return refused.status !== 200 && readOnly.test(refused.body);
      },
      10_000,
      'a new user refused because the database is read-only',
    );
    assert.equal(refused.status, 503, refused.body);
    assert.equal(JSON.parse(refused.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
    assert.equal((await auth(s.url, 'known')).status, 200, 'a known user is served meanwhile');
    const readyz = () => get(`${s.url}/readyz`);
    await until(async () => readOnly.test((await readyz()).body), 10_000, '/readyz names the read-only database');
    for (let k = 0; k < 3; k++) {
      const ready = await readyz();
      assert.equal(ready.status, 503, `readyz while read-only: ${ready.body}`);
      assert.equal(JSON.parse(ready.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
    }
    await sql.query(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
    await reconnect();
    // Ready again with no new user needed to find out (none would come to an unready instance).
    await until(async () => (await readyz()).status === 200, 10_000, '/readyz once the database is writable');
    const after = await auth(s.url, 'after-writable');
    assert.equal(after.status, 200, after.body);
  });
});

test('SQLite file deleted while the server runs: new users get a clear 503 (nothing written where it would be lost), known users are served, /readyz fails', async (t) => {
  const s = await startSharder(t);
  const file = join(s.dir, 'sharder.db');
  const known = await auth(s.url, 'known');
  assert.equal(known.status, 200);
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  const r = await auth(s.url, 'newcomer');
  assert.equal(r.status, 503, r.body);
  assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
  assert.match(JSON.parse(r.body).message, /was deleted while the sharder had it open/);
  assert.equal((await auth(s.url, 'known')).headers['x-shard-bucket'], known.headers['x-shard-bucket']);
  const ready = await get(`${s.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(ready.body, /deleted/);
});
