/**
 * `sharder backup FILE`: an online SQLite backup taken while a real `sharder serve` process
 * assigns new users, restored by swapping the file, as docs/operations.md "Backup and restore" says.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chownSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { get } from '../helpers/http.js';
import { rawConfig, runCli, runCliProcess, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

/** The schema version a fresh database is migrated to. */
const SCHEMA = SQLITE_MIGRATIONS.at(-1)!.version;

test(
  'backup while a server assigns users holds every assignment committed before it began; restore by swapping the file',
  { timeout: 90_000 },
  async (t) => {
    const dir = tempDir(t);
    // spawnServe reads the listening address from the "started" log line.
    const cfg = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
    const dbPath = join(dir, 'sharder.db');
    const server = await spawnServe(t, cfg);
    const agent = new Agent({ connections: 8 });
    t.after(() => agent.close());

    // Writers: 8 concurrent loops assigning new users until told to stop.
    const answered = new Map<string, { bucket: string; at: number }>();
    let next = 0;
    let stop = false;
    const failures: string[] = [];
    const writer = async (): Promise<void> => {
      while (!stop) {
        const name = `user-${next++}`;
        const r = await request(`${server.url}/auth`, { headers: { REMOTE_USER: name }, dispatcher: agent });
        await r.body.dump();
        if (r.statusCode !== 200) failures.push(`${name}: ${r.statusCode}`);
        else answered.set(name, { bucket: String(r.headers['x-shard-bucket']), at: performance.now() });
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    await until(() => answered.size >= 300 || failures.length > 0, 20_000, '300 users assigned before the backup');
    assert.ok(
      answered.size >= 300,
      `300 users assigned before the backup (${answered.size}; failures: ${failures.slice(0, 3).join(', ')})`,
    );

    // Every name answered by now was committed before the backup starts.
    const before = new Map(answered);
    const backupFile = join(dir, 'backup.db');
    const backupStart = performance.now();
    const result = await runCli(['backup', backupFile, '--config', cfg, '--json']);
    const backupEnd = performance.now();
    const duringBackup = [...answered.values()].filter((a) => a.at > backupStart && a.at < backupEnd).length;
    stop = true;
    await Promise.all(writers);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(failures, []);
    assert.ok(duringBackup > 0, 'the server kept assigning while the backup ran');

    const report = JSON.parse(result.stdout) as {
      assignments: number;
      schemaVersion: number;
      target: string;
      bytes: number;
    };
    assert.equal(report.target, backupFile);
    assert.equal(report.schemaVersion, SCHEMA);
    assert.ok(report.assignments >= before.size, `${report.assignments} rows, ${before.size} committed before`);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600, 'the backup holds user names: only its owner may read it');

    // The backup is one self-contained file with every assignment committed before it began.
    const copy = new Database(backupFile, { readonly: true, fileMustExist: true });
    try {
      assert.equal(copy.pragma('journal_mode', { simple: true }), 'delete');
      assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
      const rows = new Map(
        (
          copy.prepare("SELECT name, bucket FROM assignments WHERE kind = 'hub'").all() as {
            name: string;
            bucket: string;
          }[]
        ).map((r) => [r.name, r.bucket]),
      );
      assert.equal(rows.size, report.assignments);
      for (const [name, { bucket }] of before) assert.equal(rows.get(name), bucket, name);
      const kept = copy
        .prepare("SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count > 0 ORDER BY bucket")
        .all();
      const real = copy
        .prepare("SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket")
        .all();
      assert.deepEqual(kept, real, 'counts in the backup equal its real counts');
    } finally {
      copy.close();
    }
    const afterBackup = [...answered.keys()].filter((n) => !before.has(n));
    assert.ok(afterBackup.length > 0);

    // Restore as docs/operations.md says: stop, replace the file (and drop its -wal/-shm), start.
    server.child.kill('SIGTERM');
    const [code] = (await once(server.child, 'exit')) as [number | null];
    assert.equal(code, 0);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
    renameSync(backupFile, dbPath);
    const restored = await spawnServe(t, cfg);
    const buckets = await runCli(['buckets', '--config', cfg, '--json']);
    assert.equal((JSON.parse(buckets.stdout) as { total: number }).total, report.assignments);
    for (const name of [...before.keys()].slice(0, 50)) {
      const r = await get(`${restored.url}/auth`, { REMOTE_USER: name });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-shard-bucket'], before.get(name)!.bucket, name);
    }
    restored.child.kill('SIGTERM');
    await once(restored.child, 'exit');
  },
);

test(
  'backup refuses to overwrite a file unless --force, and a failed backup leaves no file behind',
  { timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    const cfg = writeConfig(dir, rawConfig(dir));
    assert.equal((await runCli(['assign', 'alice', '--config', cfg])).code, 0);
    const target = join(dir, 'b.db');
    writeFileSync(target, 'precious');

    const refused = await runCli(['backup', target, '--config', cfg]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /exists: choose a new file name, or pass --force.*\[SHARD_ERR_BAD_INPUT\]/);
    assert.equal(readFileSync(target, 'utf8'), 'precious');

    const forced = await runCli(['backup', target, '--force', '--config', cfg]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stdout,
      new RegExp(
        `^backed up .*sharder\\.db to .*b\\.db: 1 assignment, schema version ${SCHEMA}, .* quick_check ok\\n$`,
      ),
    );

    const noDir = await runCli(['backup', join(dir, 'missing', 'b.db'), '--config', cfg]);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /missing does not exist: create it first/);

    const empty = tempDir(t);
    const noDb = await runCli(['backup', join(empty, 'b.db'), '--config', writeConfig(empty, rawConfig(empty))]);
    assert.equal(noDb.code, 1);
    assert.match(noDb.stderr, /there is no SQLite database at .*sharder\.db: nothing to back up.*\[SHARD_ERR_BACKUP\]/);
    assert.equal(
      existsSync(join(empty, 'sharder.db')),
      false,
      'backup must not create the database it was asked to copy',
    );
    assert.deepEqual(readdirSync(empty).sort(), ['sharder.yml']);
  },
);

test('backup of a PostgreSQL database points to pg_dump and never prints the password', async (t) => {
  const dir = tempDir(t);
  const cfg = writeConfig(dir, rawConfig(dir, { database: 'postgres://sharder:s3cret-pw@db.internal:5432/sharder' }));
  const r = await runCli(['backup', join(dir, 'x.dump'), '--config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /pg_dump --format=custom --file=.*x\.dump 'postgres:\/\/sharder@db\.internal:5432\/sharder'/);
  assert.match(r.stderr, /\[SHARD_ERR_BACKUP_UNSUPPORTED\]/);
  assert.doesNotMatch(r.stderr + r.stdout, /s3cret-pw/);
});

test(
  'backup run as root on a file owned by the service user is refused',
  { skip: process.getuid?.() === 0 ? undefined : 'needs root (to chown the database to another user)' },
  async (t) => {
    const dir = tempDir(t);
    const cfg = writeConfig(dir, rawConfig(dir));
    assert.equal((await runCli(['assign', 'alice', '--config', cfg])).code, 0);
    for (const f of ['sharder.db', 'sharder.db-wal', 'sharder.db-shm'])
      if (existsSync(join(dir, f))) chownSync(join(dir, f), 65534, 65534);
    const r = await runCli(['backup', join(dir, 'b.db'), '--config', cfg]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /belongs to .*, not root: run this command as that user \(sudo -u .* sharder \.\.\.\).*\[SHARD_ERR_WRONG_USER\]/,
    );
    assert.equal(existsSync(join(dir, 'b.db')), false);
  },
);

test('with umask 000, the database, its -wal and -shm, a backup and the folders the sharder creates are private (0600, 0700)', async (t) => {
  const dir = tempDir(t);
  // The sharder creates state/db itself.
  const state = join(dir, 'state');
  const dbDir = join(state, 'db');
  const cfg = writeConfig(
    dir,
    rawConfig(dir, { database: `sqlite:${join(dbDir, 'sharder.db')}`, log: { level: 'info' } }),
  );
  const server = await spawnServe(t, cfg, {}, [], { umask: 0o000 });
  const r = await get(`${server.url}/auth`, { REMOTE_USER: 'alice' });
  assert.equal(r.status, 200, r.body);
  const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
  // While the server runs, all three files exist.
  for (const f of ['sharder.db', 'sharder.db-wal', 'sharder.db-shm'])
    assert.equal(mode(join(dbDir, f)), '600', `${f}: only the sharder's user may read user names`);
  for (const d of [state, dbDir]) assert.equal(mode(d), '700', `${d}: created private`);

  const backupFile = join(dir, 'backup.db');
  const b = await runCliProcess(['backup', backupFile, '--config', cfg], { umask: 0o000 });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(mode(backupFile), '600');
  // A CLI command that opens the same database leaves its files as they were.
  const a = await runCliProcess(['assign', 'bob', '--config', cfg], { umask: 0o000 });
  assert.equal(a.code, 0, a.stderr);
  for (const f of ['sharder.db', 'sharder.db-wal', 'sharder.db-shm'])
    assert.equal(mode(join(dbDir, f)), '600', `${f} after the CLI`);
});
