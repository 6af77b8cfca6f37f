/**
 * The operations scenarios, written once and run on every store backend: ops.test.ts and
 * transfer.test.ts run them on SQLite, ops-postgres.test.ts on PostgreSQL, ops-mariadb.test.ts
 * on MariaDB (as the store contract is run by store-sqlite, store-postgres and store-mariadb).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseOriginalUrl, type Operations } from '../../src/ops/index.js';
import { parseCsvLine, type Format } from '../../src/ops/format.js';
import { bucketsRaw } from './sharder.js';
import { backendOpsFixture, SQLITE_OPS, who, type OpsBackend } from './ops.js';
import { tempDir } from './tmp.js';

const draining = (i: number) => ({
  kinds: { hub: { buckets: bucketsRaw().map((b, j) => (j === i ? { ...b, state: 'draining' } : b)) } },
});
const kinds = (buckets: Record<string, unknown>[]) => ({ kinds: { hub: { buckets } } });

/** Look-ups, moves, deletes, migrations, doctor, audit (the operations module itself). */
export function runOpsSuite(backend: OpsBackend): void {
  describe(`operations: ${backend.name}`, { skip: backend.skip }, () => {
    test('find, list with a stable cursor, buckets with share', async (t) => {
      const f = await backendOpsFixture(t, backend);
      for (const n of ['carol', 'alice', 'bob', 'dave'])
        await f.ops.assign({ name: n, bucket: n === 'dave' ? 'hub-1' : 'hub-0', ...who });
      const alice = await f.ops.find(undefined, 'alice');
      assert.equal(alice.bucket, 'hub-0');
      assert.equal(alice.in_config, true);
      assert.match(alice.assigned_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      await assert.rejects(f.ops.find(undefined, 'nobody'), { code: 'SHARD_ERR_NOT_FOUND' });
      await assert.rejects(f.ops.find('nokind', 'alice'), { code: 'SHARD_ERR_UNKNOWN_KIND' });
      await assert.rejects(f.ops.find(undefined, ' padded'), { code: 'SHARD_ERR_BAD_INPUT' });

      const p1 = await f.ops.list({ limit: 3 });
      assert.deepEqual(
        p1.items.map((o) => o.name),
        ['alice', 'bob', 'carol'],
      );
      assert.notEqual(p1.next_cursor, null);
      const p2 = await f.ops.list({ limit: 3, cursor: p1.next_cursor! });
      assert.deepEqual(
        p2.items.map((o) => o.name),
        ['dave'],
      );
      assert.equal(p2.next_cursor, null);
      const onHub0 = await f.ops.list({ bucket: 'hub-0', limit: 2 });
      assert.deepEqual(
        onHub0.items.map((o) => o.name),
        ['alice', 'bob'],
      );
      await assert.rejects(
        f.ops.list({ bucket: 'hub-1', cursor: onHub0.next_cursor! }),
        { code: 'SHARD_ERR_BAD_INPUT' },
        'a cursor is bound to its query',
      );
      await assert.rejects(f.ops.list({ cursor: 'garbage!' }), { code: 'SHARD_ERR_BAD_INPUT' });
      await assert.rejects(f.ops.list({ limit: 0 }), { code: 'SHARD_ERR_BAD_INPUT' });

      const b = await f.ops.buckets(undefined);
      assert.equal(b.total, 4);
      assert.deepEqual(
        b.buckets.map((x) => [x.name, x.count, x.share]),
        [
          ['hub-0', 3, 0.75],
          ['hub-1', 1, 0.25],
          ['hub-2', 0, 0],
        ],
      );
    });

    test('explicit assign and move check the bucket and the object; each change is audited', async (t) => {
      const f = await backendOpsFixture(t, backend);
      assert.deepEqual(await f.ops.assign({ name: 'x', bucket: 'hub-2', ...who, reason: 'vip' }), {
        kind: 'hub',
        name: 'x',
        from: null,
        to: 'hub-2',
        changed: true,
        servers_stopped: false,
      });
      assert.equal((await f.ops.assign({ name: 'x', bucket: 'hub-2', ...who })).changed, false);
      await assert.rejects(f.ops.assign({ name: 'x', bucket: 'hub-1', ...who }), { code: 'SHARD_ERR_CONFLICT' });
      await assert.rejects(f.ops.assign({ name: 'y', bucket: 'hub-9', ...who }), {
        code: 'SHARD_ERR_NO_SUCH_BUCKET',
        message: /hub-0, hub-1, hub-2/,
      });

      await assert.rejects(f.ops.move({ name: 'x', to: 'hub-9', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
      await assert.rejects(f.ops.move({ name: 'ghost', to: 'hub-0', ...who }), { code: 'SHARD_ERR_NOT_FOUND' });
      await assert.rejects(f.ops.move({ kind: 'nokind', name: 'x', to: 'hub-0', ...who }), {
        code: 'SHARD_ERR_UNKNOWN_KIND',
      });
      assert.equal(await f.store.lookup('hub', 'x'), 'hub-2', 'failed moves change nothing');

      f.changed.length = 0;
      const m = await f.ops.move({ name: 'x', to: 'hub-0', actor: 'api:alice', reason: 'rebalance' });
      assert.deepEqual([m.from, m.to, m.changed], ['hub-2', 'hub-0', true]);
      assert.deepEqual(f.changed, [['hub', 'x']], 'the cache of this process is told');
      assert.equal((await f.ops.move({ name: 'x', to: 'hub-0', ...who })).changed, false);

      const log = await f.ops.audit({ name: 'x' });
      assert.deepEqual(
        log.items.map((e) => [e.action, e.from, e.to, e.actor, e.reason]),
        [
          ['move', 'hub-2', 'hub-0', 'api:alice', 'rebalance'],
          ['assign', null, 'hub-2', 'cli:tester', 'vip'],
        ],
      );
      await assert.rejects(f.ops.move({ name: 'x', to: 'hub-1', ...who, reason: 'a\u0000b' }), {
        code: 'SHARD_ERR_BAD_INPUT',
      });
    });

    test('delete: the next assignment is afresh by the policy; a missing name is an error', async (t) => {
      const f = await backendOpsFixture(t, backend);
      await f.ops.assign({ name: 'gone', bucket: 'hub-2', ...who });
      const r = await f.ops.delete({ name: 'gone', ...who });
      assert.deepEqual([r.from, r.to], ['hub-2', null]);
      await assert.rejects(f.ops.delete({ name: 'gone', ...who }), { code: 'SHARD_ERR_NOT_FOUND' });
      const kind = f.config().kinds.get('hub')!;
      assert.equal((await f.store.assign('hub', 'gone', kind.buckets)).bucket, 'hub-0');
      assert.equal((await f.ops.audit({ action: 'delete' })).items.length, 1);
    });

    test('audit: filters, pages and bad filters', async (t) => {
      const f = await backendOpsFixture(t, backend);
      for (let i = 0; i < 5; i++) await f.ops.assign({ name: `a${i}`, bucket: 'hub-0', ...who });
      const p1 = await f.ops.audit({ limit: 2 });
      assert.deepEqual(
        p1.items.map((e) => e.name),
        ['a4', 'a3'],
      );
      const p2 = await f.ops.audit({ limit: 2, cursor: p1.next_cursor! });
      assert.deepEqual(
        p2.items.map((e) => e.name),
        ['a2', 'a1'],
      );
      assert.equal((await f.ops.audit({ since: '2000-01-01' })).items.length, 5);
      assert.equal((await f.ops.audit({ since: new Date(Date.now() + 3600_000).toISOString() })).items.length, 0);
      await assert.rejects(f.ops.audit({ action: 'explode' }), {
        code: 'SHARD_ERR_BAD_INPUT',
        message: /assign, move, delete, migrate, import, repair/,
      });
      await assert.rejects(f.ops.audit({ since: 'yesterday' }), { code: 'SHARD_ERR_BAD_INPUT' });
      await assert.rejects(f.ops.audit({ cursor: p1.next_cursor!.slice(0, 5) }), { code: 'SHARD_ERR_BAD_INPUT' });
    });

    test('migrate to a named bucket: batches, audit per batch, counts right, nothing left', async (t) => {
      const f = await backendOpsFixture(t, backend, draining(0));
      await f.db.seed('hub', 'hub-0', 25);
      const batches: string[] = [];
      const r = await f.ops.migrate({
        from: 'hub-0',
        to: 'hub-2',
        batchSize: 10,
        ...who,
        onBatch: (b) => void batches.push(`${b.id}:${b.moved}`),
      });
      assert.equal(r.moved, 25);
      assert.equal(r.batches, 3);
      assert.equal(r.remaining, 0);
      assert.deepEqual(r.targets, { 'hub-2': 25 });
      assert.deepEqual(batches, [`${r.id}/1:10`, `${r.id}/2:10`, `${r.id}/3:5`]);
      for (let n = 1; n <= 3; n++) {
        const rows = (await f.ops.audit({ batch: `${r.id}/${n}`, limit: 100 })).items;
        assert.equal(rows.length, n === 3 ? 5 : 10);
        assert.ok(
          rows.every(
            (e) => e.action === 'migrate' && e.from === 'hub-0' && e.to === 'hub-2' && e.actor === 'cli:tester',
          ),
        );
      }
      assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-2': 25 });
      assert.equal((await f.ops.doctor()).ok, true);
    });

    test('migrate spread: the policy fills the other active buckets evenly; the dry run is the same plan', async (t) => {
      const f = await backendOpsFixture(
        t,
        backend,
        kinds([
          { name: 'hub-0', state: 'draining' },
          { name: 'hub-1' },
          { name: 'hub-2' },
          { name: 'hub-3', state: 'draining' },
        ]),
      );
      await f.db.seed('hub', 'hub-0', 30);
      await f.db.seed('hub', 'hub-1', 6, 'old');
      const plan = new Map<string, string>();
      const dry = await f.ops.migrate({
        from: 'hub-0',
        dryRun: true,
        batchSize: 7,
        ...who,
        onBatch: (b) => b.planned.forEach((p) => plan.set(p.name, p.to)),
      });
      assert.equal(dry.dry_run, true);
      assert.equal(dry.planned, 30);
      assert.equal(dry.moved, 0);
      assert.equal(dry.remaining, 30, 'a dry run changes nothing');
      assert.deepEqual(
        dry.targets,
        { 'hub-2': 18, 'hub-1': 12 },
        'hub-2 catches up with hub-1 first; draining hub-3 gets nothing',
      );
      assert.equal((await f.ops.audit({})).items.length, 0);

      const real = await f.ops.migrate({ from: 'hub-0', batchSize: 7, ...who });
      assert.deepEqual(real.targets, dry.targets);
      for (const [name, to] of plan) assert.equal(await f.store.lookup('hub', name), to, name);
      assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-1': 18, 'hub-2': 18 });
    });

    test('migrate refuses an active source, itself, unknown buckets, and no target', async (t) => {
      const f = await backendOpsFixture(t, backend);
      await f.db.seed('hub', 'hub-0', 3);
      await assert.rejects(f.ops.migrate({ from: 'hub-0', ...who }), {
        code: 'SHARD_ERR_BUCKET_ACTIVE',
        message: /draining/,
      });
      const dry = await f.ops.migrate({ from: 'hub-0', dryRun: true, ...who });
      assert.match(dry.warnings[0]!, /active/);
      f.setConfig(draining(0));
      await assert.rejects(f.ops.migrate({ from: 'hub-0', to: 'hub-0', ...who }), {
        code: 'SHARD_ERR_BAD_INPUT',
        message: /onto itself/,
      });
      await assert.rejects(f.ops.migrate({ from: 'hub-0', to: 'hub-7', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
      await assert.rejects(f.ops.migrate({ from: 'nope', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
      await assert.rejects(f.ops.migrate({ from: 'hub-0', batchSize: 0, ...who }), { code: 'SHARD_ERR_BAD_INPUT' });
      f.setConfig(
        kinds([
          { name: 'hub-0', state: 'draining' },
          { name: 'hub-1', state: 'draining' },
        ]),
      );
      await assert.rejects(f.ops.migrate({ from: 'hub-0', ...who }), {
        code: 'SHARD_ERR_BAD_INPUT',
        message: /no other active bucket/,
      });
      assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-0': 3 }, 'nothing moved');
    });

    test('a bucket removed from the configuration can be migrated (and doctor reports it until then)', async (t) => {
      const f = await backendOpsFixture(t, backend);
      await f.db.seed('hub', 'old-hub', 4);
      const before = await f.ops.doctor();
      assert.equal(before.ok, false);
      assert.deepEqual(before.checks.find((c) => c.check === 'buckets_in_config')?.details, [
        { kind: 'hub', bucket: 'old-hub', objects: 4 },
      ]);
      const r = await f.ops.migrate({ from: 'old-hub', ...who });
      assert.equal(r.moved, 4);
      assert.deepEqual(r.targets, { 'hub-0': 2, 'hub-1': 1, 'hub-2': 1 });
      assert.equal((await f.ops.doctor()).ok, true);
    });

    test('an interrupted migration resumes where it stopped when run again', async (t) => {
      const f = await backendOpsFixture(t, backend, draining(1));
      await f.db.seed('hub', 'hub-1', 50);
      await assert.rejects(
        f.ops.migrate({
          from: 'hub-1',
          to: 'hub-0',
          batchSize: 10,
          ...who,
          onBatch: (b) => {
            if (b.batch === 2) throw new Error('operator pressed ^C');
          },
        }),
        /operator pressed/,
      );
      assert.equal((await f.store.counts('hub')).get('hub-1'), 30, 'two whole batches moved, the rest untouched');
      const r = await f.ops.migrate({ from: 'hub-1', to: 'hub-0', batchSize: 10, ...who });
      assert.equal(r.moved, 30);
      assert.equal(r.remaining, 0);
      assert.equal((await f.ops.audit({ action: 'migrate', limit: 1000 })).items.length, 50);
      assert.equal((await f.ops.doctor()).ok, true);
    });

    test('doctor finds drifted counts, unknown kinds and buckets without upstream; --repair fixes counts', async (t) => {
      const f = await backendOpsFixture(
        t,
        backend,
        kinds([{ name: 'hub-0', upstream: 'http://127.0.0.1:9000' }, { name: 'hub-1' }]),
      );
      await f.db.seed('hub', 'hub-0', 5);
      await f.db.seed('gone-kind', 'x', 2);
      await f.db.sql("UPDATE bucket_counts SET count = 9 WHERE kind = 'hub' AND bucket = 'hub-0'");
      const r = await f.ops.doctor();
      const by = Object.fromEntries(r.checks.map((c) => [c.check, c]));
      assert.equal(r.ok, false);
      assert.equal(by.counts!.status, 'error');
      assert.deepEqual(by.counts!.details, [{ kind: 'hub', bucket: 'hub-0', kept: 9, real: 5 }]);
      assert.deepEqual(by.kinds_in_config!.details, [{ kind: 'gone-kind', objects: 2 }]);
      assert.equal(by.upstreams!.status, 'warning');
      assert.deepEqual(by.upstreams!.details, [{ kind: 'hub', bucket: 'hub-1' }]);
      assert.equal(by.one_row_per_object!.status, 'ok');

      const fixed = await f.ops.repair({ actor: 'cli:tester', reason: 'after restore' });
      assert.deepEqual(fixed.repaired, [{ kind: 'hub', bucket: 'hub-0', kept: 9, real: 5 }]);
      assert.equal(fixed.report.checks.find((c) => c.check === 'counts')!.status, 'ok');
      assert.equal(fixed.report.ok, false, 'the unknown kind remains an error');
      const onlyHub = await f.ops.doctor('hub');
      assert.equal(onlyHub.ok, true);
      assert.equal(onlyHub.warnings, 1);
      assert.equal((await f.ops.audit({ action: 'repair' })).items[0]?.actor, 'cli:tester');
    });
  });
}

export async function exportText(ops: Operations, format: Format, kind?: string): Promise<string> {
  let s = '';
  for await (const line of ops.export({ format, kind })) s += line;
  return s;
}

export const twoKinds = {
  kinds: { hub: { buckets: bucketsRaw() }, home: { buckets: [{ name: 'nfs-a' }, { name: 'nfs-b' }] } },
};
export const awkward = [
  'alice',
  'Bob',
  'comma, inside',
  'quote "inside"',
  'élève',
  '用户',
  'x'.repeat(200),
  "o'neil",
  'inner space',
];

/** The original's layout (SQLAlchemy model in its db.py), with its placeholder rows. */
export const ORIGINAL_ROWS: [string, string, string][] = [
  ['hub', 'hub-0', 'dummy-hub-0'],
  ['hub', 'hub-1', 'dummy-hub-1'],
  ['hub', 'hub-2', 'dummy-hub-2'],
  ['hub', 'hub-1', 'iana'],
  ['hub', 'hub-2', 'yuvi'],
  ['hub', 'hub-0', 'ryan'],
  ['hub', 'hub-1', 'dummy-hub-0'], // a real user whose name merely looks like a placeholder
  ['hub', 'hub-0', 'iana'], // a duplicate the original's missing constraint allowed: later row conflicts
  ['home', 'nfs-a', 'dummy-nfs-a'],
  ['home', 'nfs-b', 'iana'],
];

/** An original-format SQLite database (its SQLAlchemy model's table and index) holding `rows` (kind, bucket, name). */
export function writeOriginalSqlite(
  path: string,
  rows: readonly (readonly [string, string, string])[] = ORIGINAL_ROWS,
): void {
  const db = new Database(path);
  db.exec(
    'CREATE TABLE shard (id INTEGER NOT NULL, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256), ' +
      'PRIMARY KEY (id))',
  );
  db.exec('CREATE INDEX shard_kind_name_index ON shard (kind, name)');
  const ins = db.prepare('INSERT INTO shard (kind, bucket, name) VALUES (?, ?, ?)');
  for (const r of rows) ins.run(...r);
  db.close();
}

export function expectOriginalImported(r: { placeholders: number; inserted: number; conflicts: unknown[] }): void {
  assert.equal(r.placeholders, 4);
  assert.equal(r.inserted, 5);
  assert.deepEqual(r.conflicts, [{ kind: 'hub', name: 'iana', existing: 'hub-1', wanted: 'hub-0' }]);
}

export async function expectOriginalStored(ops: Operations): Promise<void> {
  const hub = (await ops.list({ kind: 'hub' })).items.map((o) => `${o.name}:${o.bucket}`);
  assert.deepEqual(hub, ['dummy-hub-0:hub-1', 'iana:hub-1', 'ryan:hub-0', 'yuvi:hub-2']);
  const home = (await ops.list({ kind: 'home' })).items.map((o) => `${o.name}:${o.bucket}`);
  assert.deepEqual(home, ['iana:nfs-b']);
  assert.equal((await ops.doctor()).ok, true);
}

/** Export, import, and import from the original's SQLite database, into the backend's store. */
export function runTransferSuite(backend: OpsBackend): void {
  describe(`export and import: ${backend.name}`, { skip: backend.skip }, () => {
    for (const format of ['csv', 'jsonl'] as const) {
      test(`${format}: export → delete the database → import → export is byte for byte the same`, async (t) => {
        const dir = tempDir(t);
        const f = await backendOpsFixture(t, backend, twoKinds, dir);
        for (const [i, n] of awkward.entries()) await f.ops.assign({ name: n, bucket: `hub-${i % 3}`, ...who });
        await f.ops.assign({ kind: 'home', name: 'alice', bucket: 'nfs-b', ...who });
        await f.db.seed('hub', 'hub-1', 2500);
        const first = await exportText(f.ops, format);
        assert.equal(first.split('\n').length - 1, awkward.length + 1 + 2500 + (format === 'csv' ? 1 : 0));
        const file = join(dir, `backup.${format}`);
        writeFileSync(file, first);
        await f.db.destroy();

        const g = await backendOpsFixture(t, backend, twoKinds, dir);
        const r = await g.ops.importFile(file, who);
        assert.deepEqual(
          [r.rows, r.inserted, r.unchanged, r.conflict_count],
          [awkward.length + 2501, awkward.length + 2501, 0, 0],
        );
        assert.equal(r.batches, 3);
        assert.equal(await exportText(g.ops, format), first);
        assert.equal((await g.ops.doctor()).ok, true);

        // Idempotent: the same file again changes nothing.
        const again = await g.ops.importFile(file, who);
        assert.deepEqual(
          [again.inserted, again.unchanged, again.overwritten, again.conflict_count],
          [0, awkward.length + 2501, 0, 0],
        );
        assert.equal(await exportText(g.ops, format), first);
      });
    }

    test('export: one kind only; CSV quotes what needs quoting and parses back', async (t) => {
      const f = await backendOpsFixture(t, backend, twoKinds);
      await f.ops.assign({ name: 'a, "b"', bucket: 'hub-0', ...who });
      await f.ops.assign({ kind: 'home', name: 'h', bucket: 'nfs-a', ...who });
      const hubOnly = await exportText(f.ops, 'csv', 'hub');
      const lines = hubOnly.trimEnd().split('\n');
      assert.equal(lines[0], 'kind,name,bucket,assigned_at');
      assert.match(lines[1]!, /^hub,"a, ""b""",hub-0,\d{4}-/);
      assert.deepEqual((parseCsvLine(lines[1]!) as string[]).slice(0, 3), ['hub', 'a, "b"', 'hub-0']);
      assert.equal(lines.length, 2);
      await assert.rejects(async () => exportText(f.ops, 'csv', 'nokind'), { code: 'SHARD_ERR_UNKNOWN_KIND' });
    });

    test('import: conflicts are reported and left alone unless overwrite; the audit says who', async (t) => {
      const dir = tempDir(t);
      const f = await backendOpsFixture(t, backend, {}, dir);
      await f.ops.assign({ name: 'keep', bucket: 'hub-0', ...who });
      await f.ops.assign({ name: 'same', bucket: 'hub-1', ...who });
      const file = join(dir, 'in.csv');
      writeFileSync(file, 'name,bucket\r\nkeep,hub-2\r\nsame,hub-1\r\nnew,hub-2\r\n\r\n');
      const r = await f.ops.importFile(file, { actor: 'cli:ops', reason: 'restore' });
      assert.deepEqual([r.format, r.rows, r.inserted, r.unchanged, r.overwritten], ['csv', 3, 1, 1, 0]);
      assert.deepEqual(r.conflicts, [{ kind: 'hub', name: 'keep', existing: 'hub-0', wanted: 'hub-2' }]);
      assert.equal(await f.store.lookup('hub', 'keep'), 'hub-0');
      f.changed.length = 0;
      const o = await f.ops.importFile(file, { actor: 'cli:ops', overwrite: true });
      assert.deepEqual([o.inserted, o.unchanged, o.overwritten, o.conflict_count], [0, 2, 1, 0]);
      assert.equal(await f.store.lookup('hub', 'keep'), 'hub-2');
      assert.deepEqual(f.changed, [['hub', null]], 'overwritten objects are dropped from the cache');
      const log = (await f.ops.audit({ action: 'import' })).items;
      assert.deepEqual(
        log.map((e) => [e.name, e.from, e.to, e.actor]),
        [
          ['keep', 'hub-0', 'hub-2', 'cli:ops'],
          ['new', null, 'hub-2', 'cli:ops'],
        ],
      );
      assert.equal(log[1]!.reason, 'restore');
    });

    test('import: malformed rows are all named with their lines and nothing is imported', async (t) => {
      const dir = tempDir(t);
      const f = await backendOpsFixture(t, backend, {}, dir);
      const bad = join(dir, 'bad.csv');
      writeFileSync(
        bad,
        [
          'kind,name,bucket,assigned_at',
          'hub,ok1,hub-0,',
          'hub,"unclosed,hub-0,',
          'hub,ok2,hub-9,',
          'hub,two,fields',
          'nokind,x,hub-0,',
          'hub, padded,hub-0,',
          'hub,ok3,hub-1,yesterday',
          '',
        ].join('\n'),
      );
      await assert.rejects(
        f.ops.importFile(bad, who),
        (err: Error & { code: string; problems: { at: string; message: string }[] }) => {
          assert.equal(err.code, 'SHARD_ERR_IMPORT_FORMAT');
          assert.deepEqual(
            err.problems.map((p) => p.at),
            ['line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 8'],
          );
          assert.match(err.problems[0]!.message, /quoted field is not closed/);
          assert.match(err.problems[1]!.message, /bucket "hub-9" is not in the configuration/);
          assert.match(err.problems[3]!.message, /kind "nokind" is not configured/);
          assert.match(err.message, /6 bad rows, nothing imported/);
          return true;
        },
      );
      assert.equal(await f.store.lookup('hub', 'ok1'), undefined);

      const badJson = join(dir, 'bad.jsonl');
      writeFileSync(badJson, '{"name":"a","bucket":"hub-0"}\n{"name":"b","bucket":"hub-0","extra":1}\n[1]\nnot json\n');
      await assert.rejects(f.ops.importFile(badJson, who), (err: Error & { problems: { at: string }[] }) => {
        assert.deepEqual(
          err.problems.map((p) => p.at),
          ['line 2', 'line 3', 'line 4'],
        );
        return true;
      });
      const noHeader = join(dir, 'noheader.csv');
      writeFileSync(noHeader, 'alice,hub-0\n');
      await assert.rejects(f.ops.importFile(noHeader, who), {
        code: 'SHARD_ERR_IMPORT_FORMAT',
        message: /unknown column "alice"/,
      });
      assert.equal((await f.ops.audit({})).items.length, 0);
    });

    test('import --kind imports only that kind; rows without a kind count as it', async (t) => {
      const dir = tempDir(t);
      const f = await backendOpsFixture(t, backend, twoKinds, dir);
      const file = join(dir, 'mixed.jsonl');
      const rows = [
        { kind: 'hub', name: 'a', bucket: 'hub-0' },
        { kind: 'home', name: 'a', bucket: 'nfs-a' },
        { name: 'b', bucket: 'nfs-b', assigned_at: '2024-01-01T00:00:00Z' },
      ];
      writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const r = await f.ops.importFile(file, { ...who, kind: 'home' });
      assert.deepEqual([r.inserted, r.other_kind], [2, 1]);
      assert.equal(await f.store.lookup('hub', 'a'), undefined);
      assert.equal((await f.store.get('home', 'b'))?.assignedAt, Date.parse('2024-01-01T00:00:00Z'));
    });

    test('import-original: an original-format SQLite database, users on their original hubs, no placeholders', async (t) => {
      const dir = tempDir(t);
      const path = join(dir, 'sharder.sqlite');
      writeOriginalSqlite(path);

      const f = await backendOpsFixture(t, backend, twoKinds, dir);
      const r = await f.ops.importOriginal(
        parseOriginalUrl(`sqlite:///${path}`) /* SQLAlchemy's absolute form: sqlite:////tmp/… */,
        { actor: 'cli:migrator' },
      );
      assert.equal(r.format, 'original');
      assert.equal(r.rows, ORIGINAL_ROWS.length);
      expectOriginalImported(r);
      await expectOriginalStored(f.ops);
      assert.equal((await f.ops.audit({ action: 'import', limit: 100 })).items.length, 5);
      // Idempotent, by any spelling of the path.
      const again = await f.ops.importOriginal(parseOriginalUrl(path), who);
      assert.deepEqual([again.inserted, again.unchanged, again.conflict_count], [0, 5, 1]);
    });
  });
}

/**
 * An export of SQLite imported into `backend` exports the same bytes, and pages list the same
 * names: every backend orders names by the bytes of their UTF-8 encoding.
 */
export function runSqliteAgreement(backend: OpsBackend): void {
  describe(`SQLite and ${backend.name} agree byte for byte`, { skip: backend.skip }, () => {
    test('an export of SQLite imported into it exports the same bytes (CSV and JSON lines); pages list the same names', async (t) => {
      const dir = tempDir(t);
      const lite = await backendOpsFixture(t, SQLITE_OPS, twoKinds, dir);
      // Names whose byte order differs from a locale's order (case, accents, CJK, spaces, quotes).
      const names = [
        ...awkward,
        'Zoe',
        'zoe',
        'Émile',
        'emile',
        'a-b',
        'a_b',
        'a.b',
        'a~b',
        '~tilde',
        'Ünïcödé',
        '🎓student',
      ];
      for (const [i, n] of names.entries()) await lite.ops.assign({ name: n, bucket: `hub-${i % 3}`, ...who });
      await lite.ops.assign({ kind: 'home', name: 'Zoe', bucket: 'nfs-a', ...who });
      await lite.db.seed('hub', 'hub-2', 1200);
      const csv = await exportText(lite.ops, 'csv');
      const jsonl = await exportText(lite.ops, 'jsonl');
      const file = join(dir, 'from-sqlite.csv');
      writeFileSync(file, csv);

      const other = await backendOpsFixture(t, backend, twoKinds, dir);
      const r = await other.ops.importFile(file, who);
      assert.equal(r.inserted, names.length + 1 + 1200);
      assert.equal(await exportText(other.ops, 'csv'), csv);
      assert.equal(await exportText(other.ops, 'jsonl'), jsonl);

      const pages = async (f: typeof lite): Promise<string[]> => {
        const out: string[] = [];
        let cursor: string | undefined;
        do {
          const p = await f.ops.list({ limit: 7, ...(cursor ? { cursor } : {}) });
          out.push(...p.items.map((o) => o.name));
          cursor = p.next_cursor ?? undefined;
        } while (cursor !== undefined && out.length < 100);
        return out;
      };
      assert.deepEqual(await pages(other), await pages(lite));
    });
  });
}
