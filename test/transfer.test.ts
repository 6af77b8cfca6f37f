/**
 * Export, import and import from the original sharder's database, on real SQLite files (and a
 * throwaway PostgreSQL for the original's PostgreSQL layout).
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from '../src/store/sqlite-driver.js';
import pg from 'pg';
import { parseOriginalUrl } from '../src/ops/index.js';
import { parseCsvLine } from '../src/ops/format.js';
import { bucketsRaw } from './helpers/sharder.js';
import { opsFixture, seed, who } from './helpers/ops.js';
import { postgresSkip, startPostgres } from './helpers/pg-throwaway.js';
import { tempDir } from './helpers/tmp.js';
import type { Operations } from '../src/ops/index.js';
import type { Format } from '../src/ops/format.js';

async function exportText(ops: Operations, format: Format, kind?: string): Promise<string> {
  let s = '';
  for await (const line of ops.export({ format, kind })) s += line;
  return s;
}

const twoKinds = { kinds: { hub: { buckets: bucketsRaw() }, home: { buckets: [{ name: 'nfs-a' }, { name: 'nfs-b' }] } } };
const awkward = ['alice', 'Bob', 'comma, inside', 'quote "inside"', 'élève', '用户', 'x'.repeat(200), "o'neil", 'inner space'];

for (const format of ['csv', 'jsonl'] as const) {
  test(`${format}: export → delete the database → import → export is byte for byte the same`, async (t) => {
    const dir = tempDir(t);
    const f = opsFixture(t, twoKinds, dir);
    for (const [i, n] of awkward.entries()) await f.ops.assign({ name: n, bucket: `hub-${i % 3}`, ...who });
    await f.ops.assign({ kind: 'home', name: 'alice', bucket: 'nfs-b', ...who });
    seed(f.store, 'hub', 'hub-1', 2500);
    const first = await exportText(f.ops, format);
    assert.equal(first.split('\n').length - 1, awkward.length + 1 + 2500 + (format === 'csv' ? 1 : 0));
    const file = join(dir, `backup.${format}`);
    writeFileSync(file, first);
    await f.store.close();
    for (const ext of ['', '-wal', '-shm']) rmSync(join(dir, `sharder.db${ext}`), { force: true });

    const g = opsFixture(t, twoKinds, dir);
    const r = await g.ops.importFile(file, who);
    assert.deepEqual([r.rows, r.inserted, r.unchanged, r.conflict_count], [awkward.length + 2501, awkward.length + 2501, 0, 0]);
    assert.equal(r.batches, 3);
    assert.equal(await exportText(g.ops, format), first);
    assert.equal((await g.ops.doctor()).ok, true);

    // Idempotent: the same file again changes nothing.
    const again = await g.ops.importFile(file, who);
    assert.deepEqual([again.inserted, again.unchanged, again.overwritten, again.conflict_count], [0, awkward.length + 2501, 0, 0]);
    assert.equal(await exportText(g.ops, format), first);
  });
}

test('export: one kind only; CSV quotes what needs quoting and parses back', async (t) => {
  const f = opsFixture(t, twoKinds);
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
  const f = opsFixture(t, {}, dir);
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
  assert.deepEqual(log.map((e) => [e.name, e.from, e.to, e.actor]), [['keep', 'hub-0', 'hub-2', 'cli:ops'], ['new', null, 'hub-2', 'cli:ops']]);
  assert.equal(log[1]!.reason, 'restore');
});

test('import: malformed rows are all named with their lines and nothing is imported', async (t) => {
  const dir = tempDir(t);
  const f = opsFixture(t, {}, dir);
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, [
    'kind,name,bucket,assigned_at',
    'hub,ok1,hub-0,',
    'hub,"unclosed,hub-0,',
    'hub,ok2,hub-9,',
    'hub,two,fields',
    'nokind,x,hub-0,',
    'hub, padded,hub-0,',
    'hub,ok3,hub-1,yesterday',
    '',
  ].join('\n'));
  await assert.rejects(f.ops.importFile(bad, who), (err: Error & { code: string; problems: { at: string; message: string }[] }) => {
    assert.equal(err.code, 'SHARD_ERR_IMPORT_FORMAT');
    assert.deepEqual(err.problems.map((p) => p.at), ['line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 8']);
    assert.match(err.problems[0]!.message, /quoted field is not closed/);
    assert.match(err.problems[1]!.message, /bucket "hub-9" is not in the configuration/);
    assert.match(err.problems[3]!.message, /kind "nokind" is not configured/);
    assert.match(err.message, /6 bad rows, nothing imported/);
    return true;
  });
  assert.equal(await f.store.lookup('hub', 'ok1'), undefined);

  const badJson = join(dir, 'bad.jsonl');
  writeFileSync(badJson, '{"name":"a","bucket":"hub-0"}\n{"name":"b","bucket":"hub-0","extra":1}\n[1]\nnot json\n');
  await assert.rejects(f.ops.importFile(badJson, who), (err: Error & { problems: { at: string }[] }) => {
    assert.deepEqual(err.problems.map((p) => p.at), ['line 2', 'line 3', 'line 4']);
    return true;
  });
  const noHeader = join(dir, 'noheader.csv');
  writeFileSync(noHeader, 'alice,hub-0\n');
  await assert.rejects(f.ops.importFile(noHeader, who), { code: 'SHARD_ERR_IMPORT_FORMAT', message: /unknown column "alice"/ });
  assert.equal((await f.ops.audit({})).items.length, 0);
});

test('import --kind imports only that kind; rows without a kind count as it', async (t) => {
  const dir = tempDir(t);
  const f = opsFixture(t, twoKinds, dir);
  const file = join(dir, 'mixed.jsonl');
  writeFileSync(file, '{"kind":"hub","name":"a","bucket":"hub-0"}\n{"kind":"home","name":"a","bucket":"nfs-a"}\n{"name":"b","bucket":"nfs-b","assigned_at":"2024-01-01T00:00:00Z"}\n');
  const r = await f.ops.importFile(file, { ...who, kind: 'home' });
  assert.deepEqual([r.inserted, r.other_kind], [2, 1]);
  assert.equal(await f.store.lookup('hub', 'a'), undefined);
  assert.equal((await f.store.get('home', 'b'))?.assignedAt, Date.parse('2024-01-01T00:00:00Z'));
});

/** The original's layout (SQLAlchemy model in its db.py), with its placeholder rows. */
const ORIGINAL_ROWS: [string, string, string][] = [
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

function expectOriginalImported(r: { placeholders: number; inserted: number; conflicts: unknown[] }): void {
  assert.equal(r.placeholders, 4);
  assert.equal(r.inserted, 5);
  assert.deepEqual(r.conflicts, [{ kind: 'hub', name: 'iana', existing: 'hub-1', wanted: 'hub-0' }]);
}

async function expectOriginalStored(ops: Operations): Promise<void> {
  const hub = (await ops.list({ kind: 'hub' })).items.map((o) => `${o.name}:${o.bucket}`);
  assert.deepEqual(hub, ['dummy-hub-0:hub-1', 'iana:hub-1', 'ryan:hub-0', 'yuvi:hub-2']);
  const home = (await ops.list({ kind: 'home' })).items.map((o) => `${o.name}:${o.bucket}`);
  assert.deepEqual(home, ['iana:nfs-b']);
  assert.equal((await ops.doctor()).ok, true);
}

test('import-original: an original-format SQLite database, users on their original hubs, no placeholders', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'sharder.sqlite');
  const db = new Database(path);
  db.exec('CREATE TABLE shard (id INTEGER NOT NULL, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256), PRIMARY KEY (id))');
  db.exec('CREATE INDEX shard_kind_name_index ON shard (kind, name)');
  const ins = db.prepare('INSERT INTO shard (kind, bucket, name) VALUES (?, ?, ?)');
  for (const r of ORIGINAL_ROWS) ins.run(...r);
  db.close();

  const f = opsFixture(t, twoKinds, dir);
  const r = await f.ops.importOriginal(parseOriginalUrl(`sqlite:///${path}`) /* SQLAlchemy's absolute form: sqlite:////tmp/… */, { actor: 'cli:migrator' });
  assert.equal(r.format, 'original');
  assert.equal(r.rows, ORIGINAL_ROWS.length);
  expectOriginalImported(r);
  await expectOriginalStored(f.ops);
  assert.equal((await f.ops.audit({ action: 'import', limit: 100 })).items.length, 5);
  // Idempotent, by any spelling of the path.
  const again = await f.ops.importOriginal(parseOriginalUrl(path), who);
  assert.deepEqual([again.inserted, again.unchanged, again.conflict_count], [0, 5, 1]);
});

test('import-original: refuses what is not an original database, and unknown buckets, naming the rows', async (t) => {
  const dir = tempDir(t);
  const f = opsFixture(t, {}, dir);
  await assert.rejects(f.ops.importOriginal(parseOriginalUrl(join(dir, 'missing.db')), who), { code: 'SHARD_ERR_SOURCE_UNAVAILABLE' });
  const other = join(dir, 'other.db');
  new Database(other).exec('CREATE TABLE users (id INTEGER)');
  await assert.rejects(f.ops.importOriginal(parseOriginalUrl(other), who), { code: 'SHARD_ERR_BAD_INPUT', message: /no table shard/ });
  const odd = join(dir, 'odd.db');
  const db = new Database(odd);
  db.exec('CREATE TABLE shard (id INTEGER PRIMARY KEY, kind VARCHAR, bucket VARCHAR, name VARCHAR)');
  db.prepare("INSERT INTO shard (kind, bucket, name) VALUES ('hub', 'hub-0', 'fine'), ('hub', 'retired-hub', 'stuck'), ('hub', 'hub-1', NULL)").run();
  db.close();
  await assert.rejects(f.ops.importOriginal(parseOriginalUrl(`sqlite:${odd}`), who), (err: Error & { problems: { at: string; message: string }[] }) => {
    assert.deepEqual(err.problems.map((p) => p.at), ['row id 2', 'row id 3']);
    assert.match(err.problems[0]!.message, /"retired-hub" is not in the configuration/);
    return true;
  });
  assert.equal(await f.store.lookup('hub', 'fine'), undefined, 'nothing imported');
  assert.throws(() => parseOriginalUrl('mysql://x/y'), { code: 'SHARD_ERR_BAD_INPUT' });
  assert.deepEqual(parseOriginalUrl('postgresql+psycopg2://u:p@h:5433/db'), { backend: 'postgres', url: 'postgresql://u:p@h:5433/db' });
});

describe('import-original from PostgreSQL', { skip: postgresSkip() }, () => {
  test('the original table in PostgreSQL imports like the SQLite one; errors never show the password', async (t) => {
    const url = startPostgres(t);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE shard (id SERIAL PRIMARY KEY, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256))');
    for (const r of ORIGINAL_ROWS) await client.query('INSERT INTO shard (kind, bucket, name) VALUES ($1, $2, $3)', r);
    await client.end();
    const f = opsFixture(t, twoKinds);
    const r = await f.ops.importOriginal(parseOriginalUrl(url.replace('postgresql://', 'postgres://')), who);
    expectOriginalImported(r);
    await expectOriginalStored(f.ops);

    const secret = 'hunter2-very-secret';
    await assert.rejects(f.ops.importOriginal(parseOriginalUrl(`postgres://nobody:${secret}@127.0.0.1:1/x`), who), (err: Error & { code: string }) => {
      assert.equal(err.code, 'SHARD_ERR_SOURCE_UNAVAILABLE');
      assert.ok(!err.message.includes(secret), err.message);
      return true;
    });
  });
});

test('format: CSV lines parse exactly, and malformed quoting is named', () => {
  assert.deepEqual(parseCsvLine('a,"b,c","d""e",'), ['a', 'b,c', 'd"e', '']);
  assert.deepEqual(parseCsvLine(''), ['']);
  assert.match(parseCsvLine('a,"b"x') as string, /unexpected character/);
  assert.match(parseCsvLine('a,b"c') as string, /must be quoted/);
});
