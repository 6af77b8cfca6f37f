import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { get } from '../helpers/http.js';
import { rawConfig, runCli, runCliProcess, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

test('sharder --help lists the commands; --version prints the package version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const cmd of ['serve', 'check-config', 'assign', 'buckets'])
    assert.match(help.stdout, new RegExp(`^  ${cmd} `, 'm'));
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const sub = await runCli(['assign', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /Usage: sharder assign NAME/);
});

test('usage errors exit 2 with a message', async () => {
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badOpt = await runCli(['buckets', '--nope']);
  assert.equal(badOpt.code, 2);
  assert.match(badOpt.stderr, /Unknown option '--nope'/);
  const missing = await runCli(['assign']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /assign takes exactly one NAME/);
});

test('check-config: OK on the shipped file; every problem listed with exit 2 on a bad one', async (t) => {
  const ok = await runCli(['check-config', '--config', 'sharder.yml']);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /sharder\.yml: OK \(hub: 3 buckets\)/);
  const dir = tempDir(t);
  const bad = join(dir, 'bad.yml');
  writeFileSync(
    bad,
    'kinds:\n  hub:\n    buckets:\n      - {name: hub-0}\n      - {name: hub-0}\n      - {name: hub-2, ' +
      'upstream: "ftp//x"}\n',
  );
  const r = await runCli(['check-config', '--config', bad]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    [
      'sharder: invalid configuration (2 problems):',
      `  ${bad}: kinds.hub.buckets[1].name: duplicate bucket name "hub-0" (also at buckets[0]): bucket names ` +
        'must be unique within a kind',
      `  ${bad}: kinds.hub.buckets[2].upstream: must be an http:// or https:// URL, got the string "ftp//x"`,
      '',
    ].join('\n'),
  );
});

test('the process entry: --help, and serve refusing a bad configuration, with the exit statuses and bytes of main()', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.yml');
  writeFileSync(bad, 'kinds: {hub: {buckets: []}}\n');
  const [help, serve] = await Promise.all([runCliProcess(['--help']), runCliProcess(['serve', '--config', bad])]);
  assert.deepEqual(help, await runCli(['--help']));
  const check = await runCli(['check-config', '--config', bad]);
  assert.deepEqual(check, {
    code: 2,
    stdout: '',
    stderr:
      `sharder: invalid configuration (1 problem):\n  ${bad}: kinds.hub.buckets: must be a non-empty list of ` +
      'buckets, got an empty list\n',
  });
  assert.deepEqual(serve, check, 'serve refuses a bad configuration as check-config does, and starts nothing');
});

test('check-config and serve: __proto__, constructor and toString are unknown keys, exit 2, no stack trace', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'proto.yml');
  writeFileSync(
    file,
    'kinds:\n  hub:\n    buckets: [{name: hub-0}]\n__proto__: {listen: 1}\nconstructor: {a: 1}\ntoString: 1\n',
  );
  const known =
    'unknown key (known: listen, workers, mode, proxy, control_listen, admin, database, identity, cookie, ' +
    'shard, default_kind, kind_header, cache, store, log, metrics, status, postgres, mariadb, kinds)';
  for (const cmd of ['check-config', 'serve']) {
    const r = await (cmd === 'serve' ? runCliProcess : runCli)([cmd, '--config', file]);
    assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
    assert.equal(
      r.stderr,
      [
        'sharder: invalid configuration (3 problems):',
        `  ${file}: __proto__: ${known}`,
        `  ${file}: constructor: ${known}`,
        `  ${file}: toString: ${known}`,
        '',
      ].join('\n'),
      cmd,
    );
  }
});

test('serve on an address already in use: exit 2 naming the key (listen or control_listen) and the address, no stack trace', async (t) => {
  // A real listener holds the port, as another program (or a second sharder) would.
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.after(() => holder.close());
  const taken = `127.0.0.1:${(holder.address() as AddressInfo).port}`;
  const dir = tempDir(t);
  // With workers: 2 each worker says why and the primary stops the group (no restart loop).
  for (const [key, workers] of [
    ['listen', 1],
    ['control_listen', 1],
    ['listen', 2],
    ['control_listen', 2],
  ] as const) {
    const file = writeConfig(dir, rawConfig(dir, { [key]: taken, workers }), `${key}-${workers}.yml`);
    const r = await runCliProcess(['serve', '--config', file], { env: { SHARDER_LOG_LEVEL: 'info' } });
    assert.equal(r.code, 2, `${key}, workers ${workers}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `^sharder: invalid configuration \\(1 problem\\):\n  ${file.replace(/[.]/g, '\\.')}: ${key}: ` +
          `${taken.replace(/[.]/g, '\\.')} is already in use`,
      ),
      key,
    );
    assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /, `${key}: no stack trace`);
    assert.doesNotMatch(r.stdout, /"event":"started"/, `${key}: nothing was started`);
  }
});

test('assign and buckets: look up or assign, then list counts', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir));
  const a = await runCli(['assign', 'alice', '--config', file]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, 'hub-0\n');
  assert.equal((await runCli(['assign', 'alice', '--config', file])).stdout, 'hub-0\n');
  const b = await runCli(['assign', 'bob', '--config', file, '--json']);
  assert.deepEqual(JSON.parse(b.stdout), { kind: 'hub', name: 'bob', bucket: 'hub-1', created: true });
  const bad = await runCli(['assign', ' padded', '--config', file]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /invalid name " padded": the identity contains control characters or surrounding white space/,
  );
  const kind = await runCli(['assign', 'x', '--kind', 'nope', '--config', file]);
  assert.equal(kind.code, 2);
  assert.match(kind.stderr, /unknown kind "nope" \[SHARD_ERR_UNKNOWN_KIND\]/);

  const list = await runCli(['buckets', '--config', file]);
  assert.equal(list.code, 0);
  assert.equal(
    list.stdout,
    [
      'BUCKET  STATE   WEIGHT  COUNT  SHARE',
      'hub-0   active       1      1  50.0%',
      'hub-1   active       1      1  50.0%',
      'hub-2   active       1      0   0.0%',
      'kind hub: 2 objects',
      '',
    ].join('\n'),
  );
  const json = JSON.parse((await runCli(['buckets', '--config', file, '--json'])).stdout);
  assert.equal(json.total, 2);
  assert.deepEqual(
    json.buckets.map((b: { count: number }) => b.count),
    [1, 1, 0],
  );
});

test('the server and the CLI use one SQLite file at once without errors or lost writes', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir));
  const { url, child } = await spawnServe(t, file);
  const http = (async () => {
    const buckets: Record<string, string> = {};
    for (let i = 0; i < 300; i++) {
      const r = await get(`${url}/auth`, { REMOTE_USER: `web-${i}` });
      assert.equal(r.status, 200);
      buckets[`web-${i}`] = r.headers['x-shard-bucket'] as string;
    }
    return buckets;
  })();
  const cli = Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const r = await runCli(['assign', `cli-${i}`, '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    }),
  );
  const [web, fromCli] = await Promise.all([http, cli]);
  // The server answers the CLI's assignments the same way.
  for (let i = 0; i < 6; i++)
    assert.equal((await get(`${url}/auth`, { REMOTE_USER: `cli-${i}` })).headers['x-shard-bucket'], fromCli[i]);
  child.kill('SIGTERM');
  const [code] = await new Promise<[number | null]>((r) => child.once('exit', (c) => r([c])));
  assert.equal(code, 0, 'graceful stop exits 0');
  const db = new Database(join(dir, 'sharder.db'), { readonly: true });
  t.after(() => db.close());
  const rows = db.prepare('SELECT name, bucket FROM assignments').all() as Array<{ name: string; bucket: string }>;
  assert.equal(rows.length, 306);
  for (const r of rows) if (r.name.startsWith('web-')) assert.equal(r.bucket, web[r.name]);
  const kept = db.prepare('SELECT bucket, count FROM bucket_counts ORDER BY bucket').all();
  const real = db.prepare('SELECT bucket, COUNT(*) AS count FROM assignments GROUP BY bucket ORDER BY bucket').all();
  assert.deepEqual(kept, real);
  const counts = (real as Array<{ count: number }>).map((r) => r.count);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, counts.join(', '));
});

test('SIGHUP reloads the file; an invalid file is rejected and the old config kept', async (t) => {
  const dir = tempDir(t);
  const raw = rawConfig(dir, { log: { level: 'info' } });
  const file = writeConfig(dir, raw);
  const { url, child, output } = await spawnServe(t, file);
  assert.equal((await get(`${url}/auth`, { REMOTE_USER: 'a' })).headers['x-shard-bucket'], 'hub-0');
  writeConfig(dir, {
    ...raw,
    kinds: { hub: { buckets: [{ name: 'hub-0', state: 'draining' }, { name: 'new-hub' }] } },
  });
  child.kill('SIGHUP');
  const logged = (re: RegExp): Promise<number> => until(() => re.test(output()), 5000, `a log line matching ${re}`);
  await logged(/"event":"reloaded"/);
  assert.equal((await get(`${url}/auth`, { REMOTE_USER: 'b' })).headers['x-shard-bucket'], 'new-hub');
  writeFileSync(file, 'kinds: {hub: {buckets: []}}\n');
  child.kill('SIGHUP');
  await logged(/"event":"reload_rejected"/);
  assert.match(
    output(),
    /"key":"kinds\.hub\.buckets","message":"must be a non-empty list of buckets, got an empty list"/,
  );
  assert.equal(
    (await get(`${url}/auth`, { REMOTE_USER: 'c' })).headers['x-shard-bucket'],
    'new-hub',
    'old config still in force',
  );
});
