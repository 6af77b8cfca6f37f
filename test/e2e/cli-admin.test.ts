/**
 * The admin commands: in-process through main() for outputs and exit statuses, against a
 * spawned `sharder serve` for changes reaching a running server, and once as a process.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { get } from '../helpers/http.js';
import {
  bucketsRaw,
  rawConfig,
  runCli,
  runCliProcess,
  spawnServe,
  writeConfig,
  type CliResult,
} from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

function cli(dir: string, raw = rawConfig(dir)): (...args: string[]) => Promise<CliResult> {
  const file = writeConfig(dir, raw);
  return (...args) => runCli([...args, '--config', file], { env: { SUDO_USER: 'operator' } });
}

const ADMIN_COMMANDS = [
  'find',
  'users',
  'buckets',
  'move',
  'delete',
  'migrate',
  'export',
  'import',
  'import-original',
  'doctor',
  'audit',
];

test('every admin command is registered and has --help naming --kind and --json', async (t) => {
  const run = cli(tempDir(t));
  for (const name of ADMIN_COMMANDS) {
    assert.ok(
      COMMANDS.some((c) => c.name === name),
      name,
    );
    const r = await run(name, '--help');
    assert.equal(r.code, 0, name);
    assert.match(r.stdout, new RegExp(`^Usage: sharder ${name}`, 'm'), name);
    assert.match(r.stdout, /--kind/, `${name} --help mentions --kind`);
    assert.match(r.stdout, /--json/, `${name} --help mentions --json`);
  }
  const top = await run('--help');
  for (const name of ADMIN_COMMANDS) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'));
});

test('find, users, move, delete, buckets, audit: outputs and exit statuses', async (t) => {
  const dir = tempDir(t);
  const run = cli(dir);
  for (const n of ['alice', 'bob', 'carol', 'with space']) assert.equal((await run('assign', n)).code, 0);
  const found = await run('find', 'alice');
  assert.equal(found.code, 0);
  assert.match(found.stdout, /^BUCKET\s+ASSIGNED_AT\s+NAME\nhub-0\s+\S+Z\s+alice\n$/);
  assert.deepEqual(JSON.parse((await run('find', 'alice', '--json')).stdout).bucket, 'hub-0');
  const missing = await run('find', 'nobody');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /"nobody" of kind "hub" has no assignment \[SHARD_ERR_NOT_FOUND\]/);
  assert.equal((await run('find')).code, 2);

  const users = await run('users');
  assert.deepEqual(
    users.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s{2}/).pop()),
    ['alice', 'bob', 'carol', 'with space'],
  );
  const page = await run('users', '--limit', '2', '--json');
  const p = JSON.parse(page.stdout);
  assert.deepEqual(
    p.items.map((o: { name: string }) => o.name),
    ['alice', 'bob'],
  );
  const next = await run('users', '--limit', '2', '--cursor', p.next_cursor, '--json');
  assert.deepEqual(
    JSON.parse(next.stdout).items.map((o: { name: string }) => o.name),
    ['carol', 'with space'],
  );
  assert.deepEqual(
    JSON.parse((await run('users', '--json', '--bucket', 'hub-1')).stdout).items.map((o: { name: string }) => o.name),
    ['bob'],
  );
  assert.equal((await run('users', '--limit', 'x')).code, 2);

  const moved = await run('move', 'alice', '--to', 'hub-2', '--reason', 'ticket 42');
  assert.equal(moved.code, 0);
  assert.equal(moved.stdout, 'moved alice: hub-0 -> hub-2\n');
  const bad = await run('move', 'alice', '--to', 'hub-9');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bucket "hub-9" is not in the configuration of kind "hub".*\[SHARD_ERR_NO_SUCH_BUCKET\]/);
  assert.equal((await run('move', 'alice')).code, 2, '--to is required');
  assert.equal((await run('move', 'ghost', '--to', 'hub-1')).code, 1);
  assert.equal((await run('move', 'alice', '--to', 'hub-1', '--kind', 'nokind')).code, 2);

  const del = await run('delete', 'bob', '--json');
  assert.deepEqual(JSON.parse(del.stdout).from, 'hub-1');
  assert.equal((await run('delete', 'bob')).code, 1);

  const buckets = await run('buckets');
  assert.match(buckets.stdout, /^BUCKET\s+STATE\s+WEIGHT\s+COUNT\s+SHARE\nhub-0\s+active\s+1\s+1\s+33\.3%/);
  assert.match(buckets.stdout, /kind hub: 3 objects\n$/);

  const audit = await run('audit', '--json');
  assert.deepEqual(
    JSON.parse(audit.stdout).items.map((e: { action: string; actor: string; reason: string | null }) => [
      e.action,
      e.actor,
      e.reason,
    ]),
    [
      ['delete', 'cli:operator', null],
      ['move', 'cli:operator', 'ticket 42'],
    ],
  );
  const table = await run('audit', '--name', 'alice');
  assert.match(table.stdout, /^ID\s+AT\s+ACTOR\s+ACTION/);
  assert.match(table.stdout, /cli:operator\s+move\s+hub\s+hub-0\s+hub-2\s+-\s+alice\s+ticket 42/);
  assert.equal((await run('audit', '--action', 'nope')).code, 2);
});

test('migrate, export, import, doctor from the command line', async (t) => {
  const dir = tempDir(t);
  const buckets = bucketsRaw().map((b, i) => (i === 2 ? { ...b, state: 'draining' } : b));
  const run = cli(dir, rawConfig(dir, { kinds: { hub: { buckets } } }));
  for (const n of ['a', 'b', 'c', 'd', 'e']) await run('assign', n, '--to', 'hub-2');
  assert.match((await run('assign', 'a', '--to', 'hub-0')).stderr, /already on "hub-2": use move/);

  const self = await run('migrate', 'hub-2', '--to', 'hub-2');
  assert.equal(self.code, 2);
  assert.match(self.stderr, /onto itself/);
  const active = await run('migrate', 'hub-0');
  assert.equal(active.code, 1);
  assert.match(active.stderr, /SHARD_ERR_BUCKET_ACTIVE/);

  const dry = await run('migrate', 'hub-2', '--dry-run');
  assert.equal(dry.code, 0);
  assert.equal(
    dry.stdout,
    'hub-0  a\nhub-1  b\nhub-0  c\nhub-1  d\nhub-0  e\ndry run: 5 objects of hub-2 would move (hub-0 3, hub-1 ' +
      '2); nothing was changed\n',
  );
  const real = await run('migrate', 'hub-2', '--batch-size', '2');
  assert.equal(real.code, 0, real.stderr);
  assert.match(
    real.stdout,
    /^migrated hub-2 \(kind hub\): 5 objects moved in 3 batches \(hub-0 3, hub-1 2\), 0 skipped, 0 left on hub-2; audit batches m-\S+\/1\.\.3\n$/,
  );
  assert.match(real.stderr, /batch 1 \(m-\S+\/1\): moved 2\nbatch 2 .*\nbatch 3 .*: moved 1\n/);

  const exported = await run('export');
  assert.equal(exported.stdout.split('\n')[0], 'kind,name,bucket,assigned_at');
  const file = join(dir, 'backup.csv');
  assert.equal((await run('export', '--output', file)).code, 0);
  assert.equal(readFileSync(file, 'utf8'), exported.stdout);
  assert.equal((await run('export', '--json')).stdout, (await run('export', '--format', 'jsonl')).stdout);

  const imp = await run('import', file);
  assert.equal(imp.code, 0);
  assert.equal(imp.stdout, 'imported backup.csv: 5 rows, 0 inserted, 5 unchanged, 0 overwritten, 0 conflicts\n');
  const conflicting = join(dir, 'conflict.csv');
  writeFileSync(conflicting, 'name,bucket\na,hub-1\nnew,hub-0\n');
  const c = await run('import', conflicting);
  assert.equal(c.code, 1, 'conflicts left: exit 1');
  assert.match(
    c.stdout,
    /^conflict: hub\/a is on hub-0, the input says hub-1 \(left as it is; --overwrite replaces it\)\n/m,
  );
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'name,bucket\nx,hub-0\ny,hub-7\n');
  const b = await run('import', bad);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /bad\.csv: 1 bad row, nothing imported:\n {2}line 3: bucket "hub-7"/);

  const doc = await run('doctor');
  assert.equal(doc.code, 0);
  assert.match(doc.stdout, /^ok {7}counts: /m);
  assert.match(doc.stdout, /healthy \(0 warnings\)\n$/);
  const rep = await run('doctor', '--repair', '--json');
  assert.deepEqual(JSON.parse(rep.stdout).repaired, []);
});

test('a move and a delete by the CLI reach a running server (another process) within 2 seconds', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { store: { poll_ms: 500 } }));
  const server = await spawnServe(t, file);
  const bucket = async (name: string): Promise<string> =>
    String((await get(`${server.url}/auth`, { REMOTE_USER: name })).headers['x-shard-bucket']);
  assert.equal(await bucket('walker'), 'hub-0');
  assert.equal(await bucket('other'), 'hub-1');
  const waitFor = (name: string, want: string): Promise<number> =>
    until(async () => (await bucket(name)) === want, 2000, `${name} on ${want}`, 25);
  const mv = await runCli(['move', 'walker', '--to', 'hub-2', '--config', file]);
  assert.equal(mv.code, 0, mv.stderr);
  await waitFor('walker', 'hub-2');
  const del = await runCli(['delete', 'other', '--config', file]);
  assert.equal(del.code, 0, del.stderr);
  // Afresh by the policy: hub-0 is emptiest now (walker left it).
  await waitFor('other', 'hub-0');
  // The installed command's exit status and stderr for a missing name, from a real process.
  const missing = await runCliProcess(['find', 'nobody', '--config', file]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /SHARD_ERR_NOT_FOUND/);
  // ... and the change through the API of that server is immediate for the CLI, too.
  assert.match((await runCli(['find', 'walker', '--config', file])).stdout, /hub-2\s+\S+\s+walker/);
});
