/**
 * Export, import and import from the original sharder's database, on real SQLite files (and a
 * throwaway PostgreSQL for the original's PostgreSQL layout). The backend-neutral scenarios
 * are in helpers/ops-suite.ts (run on PostgreSQL by ops-postgres.test.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseOriginalUrl } from '../../src/ops/index.js';
import { parseCsvLine } from '../../src/ops/format.js';
import {
  expectOriginalImported,
  expectOriginalStored,
  ORIGINAL_ROWS,
  runTransferSuite,
  twoKinds,
} from '../helpers/ops-suite.js';
import { opsFixture, SQLITE_OPS, who } from '../helpers/ops.js';
import { PG_SKIP, freshDatabase, sqlClient, stopSharedPostgres } from '../helpers/postgres.js';
import { rawConfig, runCli, startSharder, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { request } from 'undici';

runTransferSuite(SQLITE_OPS);

test('import-original: refuses what is not an original database, and unknown buckets, naming the rows', async (t) => {
  const dir = tempDir(t);
  const f = opsFixture(t, {}, dir);
  await assert.rejects(f.ops.importOriginal(parseOriginalUrl(join(dir, 'missing.db')), who), {
    code: 'SHARD_ERR_SOURCE_UNAVAILABLE',
  });
  const other = join(dir, 'other.db');
  new Database(other).exec('CREATE TABLE users (id INTEGER)');
  await assert.rejects(f.ops.importOriginal(parseOriginalUrl(other), who), {
    code: 'SHARD_ERR_NOT_ORIGINAL',
    message: /no table shard/,
  });
  const odd = join(dir, 'odd.db');
  const db = new Database(odd);
  db.exec('CREATE TABLE shard (id INTEGER PRIMARY KEY, kind VARCHAR, bucket VARCHAR, name VARCHAR)');
  db.prepare(
    "INSERT INTO shard (kind, bucket, name) VALUES ('hub', 'hub-0', 'fine'), ('hub', 'retired-hub', 'stuck'), " +
      "('hub', 'hub-1', NULL)",
  ).run();
  db.close();
  await assert.rejects(
    f.ops.importOriginal(parseOriginalUrl(`sqlite:${odd}`), who),
    (err: Error & { problems: { at: string; message: string }[] }) => {
      assert.deepEqual(
        err.problems.map((p) => p.at),
        ['row id 2', 'row id 3'],
      );
      assert.match(err.problems[0]!.message, /"retired-hub" is not in the configuration/);
      return true;
    },
  );
  assert.equal(await f.store.lookup('hub', 'fine'), undefined, 'nothing imported');
  assert.throws(() => parseOriginalUrl('redis://x/y'), { code: 'SHARD_ERR_BAD_INPUT' });
  assert.deepEqual(parseOriginalUrl('mysql+pymysql://u:p@h:3307/db'), {
    backend: 'mariadb',
    location: 'mysql://u:p@h:3307/db',
  });
  assert.deepEqual(parseOriginalUrl('postgresql+psycopg2://u:p@h:5433/db'), {
    backend: 'postgres',
    location: 'postgresql://u:p@h:5433/db',
  });
});

test('import-original of a file that is not a database: SHARD_ERR_NOT_ORIGINAL naming the file, in ops, the CLI (exit 2, no stack) and the API (400)', async (t) => {
  const dir = tempDir(t);
  const f = opsFixture(t, {}, dir);
  const text = join(dir, 'notes.txt');
  writeFileSync(text, 'kinds:\n  hub: not a database at all\n'.repeat(200));
  const noise = join(dir, 'noise.bin');
  writeFileSync(noise, randomBytes(64 * 1024));
  // A real database cut short: the header is right, the pages are missing.
  const real = join(dir, 'real.db');
  const db = new Database(real);
  db.exec(
    'CREATE TABLE shard (id INTEGER PRIMARY KEY, kind VARCHAR, bucket VARCHAR, name VARCHAR); WITH RECURSIVE ' +
      'n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO shard (kind, bucket, name) ' +
      "SELECT 'hub', 'hub-0', 'u' || i FROM n",
  );
  db.close();
  const cut = join(dir, 'cut.db');
  writeFileSync(cut, readFileSync(real).subarray(0, 6000));
  for (const file of [text, noise, cut]) {
    await assert.rejects(
      f.ops.importOriginal(parseOriginalUrl(file), who),
      (err: Error & { code: string; status: number }) => {
        assert.equal(err.code, 'SHARD_ERR_NOT_ORIGINAL', `${file}: ${err.stack}`);
        assert.equal(err.status, 400);
        assert.ok(err.message.startsWith(`${file} `), err.message);
        return true;
      },
    );
  }
  const config = writeConfig(dir, rawConfig(dir));
  const cli = await runCli(['import-original', text, '--config', config]);
  assert.equal(cli.code, 2, cli.stderr);
  assert.ok(cli.stderr.startsWith(`sharder: ${text} is not a SQLite database`), cli.stderr);
  assert.ok(cli.stderr.endsWith(' [SHARD_ERR_NOT_ORIGINAL]\n') && cli.stderr.split('\n').length === 2, cli.stderr);

  const token = 'admin-token-0123456789abcdef';
  const s = await startSharder(t, { admin: { token } }, dir);
  const r = await request(`${s.sharder.controlUrl}/api/import-original`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: `sqlite:${noise}` }),
  });
  const body = (await r.body.json()) as { code: string; message: string };
  assert.equal(r.statusCode, 400, JSON.stringify(body));
  assert.equal(body.code, 'SHARD_ERR_NOT_ORIGINAL');
  assert.match(body.message, /noise\.bin is not a SQLite database/);
});

describe('import-original from PostgreSQL', { skip: PG_SKIP }, () => {
  after(stopSharedPostgres);
  test('the original table in PostgreSQL imports like the SQLite one; errors never show the password', async (t) => {
    const { url } = await freshDatabase(t);
    const client = await sqlClient(t, url);
    await client.query(
      'CREATE TABLE shard (id SERIAL PRIMARY KEY, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256))',
    );
    for (const r of ORIGINAL_ROWS) await client.query('INSERT INTO shard (kind, bucket, name) VALUES ($1, $2, $3)', r);
    const f = opsFixture(t, twoKinds);
    const r = await f.ops.importOriginal(parseOriginalUrl(url), who);
    expectOriginalImported(r);
    await expectOriginalStored(f.ops);

    const secret = 'hunter2-very-secret';
    await assert.rejects(
      f.ops.importOriginal(parseOriginalUrl(`postgres://nobody:${secret}@127.0.0.1:1/x`), who),
      (err: Error & { code: string }) => {
        assert.equal(err.code, 'SHARD_ERR_SOURCE_UNAVAILABLE');
        assert.ok(!err.message.includes(secret), err.message);
        return true;
      },
    );
  });
});

test('format: CSV lines parse exactly, and malformed quoting is named', () => {
  assert.deepEqual(parseCsvLine('a,"b,c","d""e",'), ['a', 'b,c', 'd"e', '']);
  assert.deepEqual(parseCsvLine(''), ['']);
  assert.match(parseCsvLine('a,"b"x') as string, /unexpected character/);
  assert.match(parseCsvLine('a,b"c') as string, /must be quoted/);
});
