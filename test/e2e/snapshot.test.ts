/**
 * store.snapshot_file: an instance restarted while PostgreSQL is away starts from its local
 * copy of the table, answers the users it knew, refuses new ones with 503 until the database
 * returns, and then reads the real table (which wins). A copy of another database, or of other
 * kinds, is not used.
 */
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { createLogger } from '../../src/log.js';
import { Snapshot } from '../../src/store/snapshot.js';
import { applyEnv } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { auth, newAgent, pooled, serveInstance, stopChild, tableSize } from '../helpers/fleet.js';
import {
  assertCountsEqualRows,
  PG_LOCAL_SKIP,
  freshDatabase,
  ownPostgres,
  sqlClient,
  stopSharedPostgres,
} from '../helpers/postgres.js';
import { bucketsRaw, rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

after(stopSharedPostgres);

const TIMEOUT_MS = 2000;

function over(snapshot: string): Record<string, unknown> {
  return {
    store: { poll_ms: 500, timeout_ms: TIMEOUT_MS, snapshot_file: snapshot },
    postgres: { connection_timeout_ms: 500 },
  };
}

/** Rows of kind hub in a snapshot file (read while the instance may be writing it: WAL). */
function snapshotRows(file: string): Map<string, string> {
  const db = new Database(file, { readonly: true });
  try {
    return new Map(
      (
        db.prepare("SELECT name, bucket FROM assignments WHERE kind = 'hub'").all() as Array<{
          name: string;
          bucket: string;
        }>
      ).map((r) => [r.name, r.bucket]),
    );
  } finally {
    db.close();
  }
}

function recordingLogger(): { log: ReturnType<typeof createLogger>; events: Array<Record<string, unknown>> } {
  const { sink, events } = logRecorder();
  return { log: createLogger('info', sink), events };
}

describe('snapshot: restart during an outage', { skip: PG_LOCAL_SKIP }, () => {
  test('an instance restarted with PostgreSQL stopped answers its known users from the snapshot, new users 503 within store.timeout_ms, and the database wins when it returns', async (t) => {
    const server = await ownPostgres(t);
    const db = await freshDatabase(t, server);
    const dir = tempDir(t);
    const file = join(dir, 'state', 'snapshot.db');
    const agent = newAgent(t);

    // A keeps a snapshot; B does not, and assigns users A only hears of through the change feed.
    const a = await serveInstance(t, dir, db.url, 0, over(file));
    const b = await serveInstance(t, dir, db.url, 1, { store: { poll_ms: 500 } });
    const users = Array.from({ length: 400 }, (_, i) => `learner-${i}@mooc.example`);
    const first = await pooled(users, 16, (name, i) => auth(agent, (i % 2 === 0 ? a : b).url, name));
    assert.deepEqual(
      first.filter((x) => x.status !== 200),
      [],
      'every first request answered 200',
    );
    const bucketOf = new Map(users.map((u, i) => [u, first[i]!.bucket!]));
    await until(async () => (await tableSize(a)) === users.length, 10_000, 'A holds every user');
    await until(() => snapshotRows(file).size === users.length, 10_000, 'the snapshot holds every user', 50);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the snapshot is created 0600: it holds every user name');
    assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700, 'its folder is created 0700');
    await a.stop();
    await b.stop();
    assert.deepEqual(snapshotRows(file), bucketOf, 'after a graceful stop the snapshot is the table');
    const metaDb = new Database(file, { readonly: true });
    const meta = new Map(
      (metaDb.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((r) => [
        r.key,
        r.value,
      ]),
    );
    metaDb.close();
    const sysid = (await server.admin<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()'))
      .rows[0]!.id;
    assert.equal(meta.get('system_id'), sysid, "the cluster's system identifier is recorded");
    assert.match(meta.get('location')!, new RegExp(`/${db.name}$`), 'and the database (its location)');
    assert.ok(![...meta.values()].some((v) => v.includes(server.password)), 'never the password');
    assert.equal(meta.get('kinds'), '["hub"]');

    await server.stop();
    const restarted = await spawnServe(t, join(dir, 'sharder-0.yml'));
    await until(() => restarted.output().includes('"event":"snapshot_loaded"'), 10_000, 'the snapshot loaded');
    const loaded = restarted
      .output()
      .split('\n')
      .filter((l) => l.includes('"event":"snapshot_loaded"'))
      .map((l) => JSON.parse(l) as { rows: number; age_s: number })[0]!;
    assert.equal(loaded.rows, users.length, 'snapshot_loaded says how many rows');
    assert.ok(
      Number.isInteger(loaded.age_s) && loaded.age_s >= 0 && loaded.age_s < 300,
      `snapshot_loaded says how old it is (${loaded.age_s} s)`,
    );
    assert.match(restarted.output(), /"event":"store_unreachable_at_start"/);

    const during = await pooled(users, 16, (name) => auth(agent, restarted.url, name));
    assert.equal(
      during.filter((x, i) => x.status === 200 && x.bucket === bucketOf.get(users[i]!)).length,
      users.length,
      `every known user answered 200 with their bucket (${JSON.stringify(during.find((x) => x.status !== 200))})`,
    );
    const refused = await Promise.all(Array.from({ length: 8 }, (_, i) => auth(agent, restarted.url, `newcomer-${i}`)));
    for (const x of refused) {
      assert.equal(x.status, 503);
      assert.equal(x.code, 'SHARD_ERR_STORE_UNAVAILABLE');
      assert.ok(x.ms <= TIMEOUT_MS, `a new user is refused within store.timeout_ms (${x.ms.toFixed(0)} ms)`);
    }

    // While it was away, the database changed: a user deleted, one moved. The database wins.
    await server.start();
    const sql = await sqlClient(t, db.url);
    const moved = users[1]!;
    const movedTo = bucketsRaw()
      .map((x) => x.name as string)
      .find((n) => n !== bucketOf.get(moved))!;
    await sql.query("DELETE FROM assignments WHERE kind = 'hub' AND name = $1", [users[0]]);
    await sql.query("UPDATE assignments SET bucket = $2 WHERE kind = 'hub' AND name = $1", [moved, movedTo]);
    await until(
      async () => (await auth(agent, restarted.url, 'first-after')).status === 200,
      20_000,
      'a new user is assigned once PostgreSQL returns',
      100,
    );
    assert.match(restarted.output(), /"event":"store_reached"/);
    const newcomers = await pooled(
      [...Array.from({ length: 8 }, (_, i) => `newcomer-${i}`), ...Array.from({ length: 92 }, (_, i) => `after-${i}`)],
      16,
      (name) => auth(agent, restarted.url, name),
    );
    assert.deepEqual(
      newcomers.filter((x) => x.status !== 200),
      [],
      'every new user assigned after the outage',
    );
    await until(
      async () => (await auth(agent, restarted.url, moved)).bucket === movedTo,
      10_000,
      'the move made while the instance ran from its snapshot is followed',
      50,
    );

    const total = Number((await sql.query("SELECT count(*) AS n FROM assignments WHERE kind = 'hub'")).rows[0].n);
    assert.equal(total, users.length - 1 + 1 + 100, 'one row per user');
    await assertCountsEqualRows(sql);
    const stored = new Map(
      (
        await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
      ).rows.map((r) => [r.name, r.bucket]),
    );
    const inst = {
      url: restarted.url,
      control: restarted.control!,
      output: restarted.output,
      stop: () => stopChild(restarted.child),
    };
    await until(async () => (await tableSize(inst)) === total, 10_000, "the in-memory table is the database's");
    await until(
      () => {
        const rows = snapshotRows(file);
        return rows.size === total && [...stored].every(([n, bkt]) => rows.get(n) === bkt);
      },
      10_000,
      "the snapshot is the database's table again (the deleted user gone, the move followed)",
      100,
    );
    await inst.stop();
  });

  test('a snapshot of another database, or of other kinds, is not used: a warning, and every user 503 until the database returns', async (t) => {
    const server = await ownPostgres(t);
    const first = await freshDatabase(t, server);
    const other = await freshDatabase(t, server);
    const dir = tempDir(t);
    const file = join(dir, 'snapshot.db');
    const agent = newAgent(t);

    const a = await serveInstance(t, dir, first.url, 0, over(file));
    const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
    assert.deepEqual(
      (await pooled(users, 8, (n) => auth(agent, a.url, n))).filter((x) => x.status !== 200),
      [],
    );
    await a.stop();
    assert.equal(snapshotRows(file).size, users.length);
    await server.stop();

    const cases: Array<[string, Record<string, unknown>]> = [
      ['another database', { database: other.url }],
      [
        'other kinds',
        { database: first.url, kinds: { hub: { buckets: bucketsRaw() }, lab: { buckets: bucketsRaw(2, 9100) } } },
      ],
    ];
    for (const [what, o] of cases) {
      const cfg = writeConfig(
        dir,
        rawConfig(dir, { log: { level: 'info' }, ...over(file), ...o }),
        `mismatch-${what.replace(/ /g, '-')}.yml`,
      );
      const s = await spawnServe(t, cfg);
      await until(() => s.output().includes('"event":"snapshot_ignored"'), 10_000, `${what}: snapshot_ignored logged`);
      assert.doesNotMatch(s.output(), /"event":"snapshot_loaded"/, `${what}: not loaded`);
      const x = await auth(agent, s.url, users[0]!);
      assert.equal(x.status, 503, `${what}: a user of the other database is not answered from its snapshot`);
      assert.equal(x.code, 'SHARD_ERR_STORE_UNAVAILABLE');
      await stopChild(s.child);
    }
    // The snapshot was left as it was (it is written only once the database answers).
    assert.equal(snapshotRows(file).size, users.length);
  });
});

describe('snapshot file', () => {
  test('a copy of another cluster (system identifier) is emptied when the database is reached; kinds no longer configured go', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 's.db');
    const { log, events } = recordingLogger();
    const view = (m: Map<string, string>) => ({
      keys: () => m.keys(),
      peek: (n: string) => (m.has(n) ? { name: m.get(n)! } : undefined),
    });
    const s1 = Snapshot.open(file, log);
    s1.claim({ location: 'postgres://u@h:5432/db', systemId: '111', kinds: ['hub', 'lab'] });
    s1.replace(
      'hub',
      view(
        new Map([
          ['ann', 'hub-0'],
          ['bob', 'hub-1'],
        ]),
      ),
    );
    s1.replace('lab', view(new Map([['cy', 'hub-0']])));
    s1.close();
    assert.equal(snapshotRows(file).size, 2);

    const s2 = Snapshot.open(file, log);
    const read = s2.read({ location: 'postgres://u@h:5432/db', systemId: null, kinds: ['lab', 'hub'] }, 100);
    assert.deepEqual(
      [...read!.rows.get('hub')!],
      [
        ['ann', 'hub-0'],
        ['bob', 'hub-1'],
      ],
      'same location and kinds (in any order): used',
    );
    s2.claim({ location: 'postgres://u@h:5432/db', systemId: '111', kinds: ['hub', 'lab'] });
    s2.setKinds(['hub']);
    // A rewrite of a kind: rows not in the new table go, the others are kept or updated.
    s2.put('hub', 'dan', 'hub-2');
    s2.replace(
      'hub',
      view(
        new Map([
          ['bob', 'hub-2'],
          ['dan', 'hub-2'],
        ]),
      ),
    );
    s2.close();
    assert.deepEqual(
      snapshotRows(file),
      new Map([
        ['bob', 'hub-2'],
        ['dan', 'hub-2'],
      ]),
    );
    assert.equal(
      events.filter((e) => e.event === 'snapshot_replaced').length,
      0,
      'the same database: kept, not written afresh',
    );
    const lab = new Database(file, { readonly: true });
    assert.equal(
      (lab.prepare("SELECT count(*) AS n FROM assignments WHERE kind = 'lab'").get() as { n: number }).n,
      0,
      'the kind no longer configured is gone',
    );
    lab.close();

    const s3 = Snapshot.open(file, log);
    assert.equal(
      s3.read({ location: 'postgres://u@h:5432/db', systemId: null, kinds: ['hub', 'lab'] }, 100),
      undefined,
      'the kinds differ: not used',
    );
    assert.equal(events.filter((e) => e.event === 'snapshot_ignored').length, 1);
    s3.claim({ location: 'postgres://u@h:5432/db', systemId: '222', kinds: ['hub'] });
    assert.equal(
      events.filter((e) => e.event === 'snapshot_replaced').length,
      1,
      'another cluster at the same address: replaced, with a warning',
    );
    s3.close();
    assert.equal(snapshotRows(file).size, 0);
  });

  test('a file that is not a snapshot is not opened (the server then warns snapshot_unusable and runs without one)', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'garbage.db');
    writeFileSync(file, 'this is not an SQLite database, it is 64 bytes long or so..........', { mode: 0o600 });
    const { log, events } = recordingLogger();
    assert.throws(() => Snapshot.open(file, log));
    assert.equal(events.length, 0);
  });

  test('store.snapshot_file: a string, and for PostgreSQL only', (t) => {
    const dir = tempDir(t);
    const bad = (o: Record<string, unknown>): string => {
      try {
        validateConfig(rawConfig(dir, o), join(dir, 'sharder.yml'));
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
      return '';
    };
    assert.match(bad({ store: { snapshot_file: join(dir, 's.db') } }), /store\.snapshot_file: is for PostgreSQL/);
    assert.match(bad({ store: { snapshot_file: 42 } }), /store\.snapshot_file/);
    assert.equal(
      validateConfig(rawConfig(dir, { database: 'postgres://u@h/db', store: { snapshot_file: 's.db' } }), null).store
        .snapshotFile,
      's.db',
    );
    assert.equal(validateConfig(rawConfig(dir), null).store.snapshotFile, null, 'default: none');
    assert.match(
      bad({ database: 'postgres://u@h/db', workers: 2, store: { snapshot_file: 's.db' } }),
      /store\.snapshot_file: is written by one process/,
    );
    const raw = rawConfig(dir, { database: 'postgres://u@h/db' });
    const sources = applyEnv(raw, { SHARDER_STORE_SNAPSHOT_FILE: '/var/lib/sharder/snapshot.db' });
    assert.equal(
      validateConfig(raw, null, sources).store.snapshotFile,
      '/var/lib/sharder/snapshot.db',
      'SHARDER_STORE_SNAPSHOT_FILE',
    );
  });
});
