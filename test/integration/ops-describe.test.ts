/**
 * The operations' descriptions and the one parser per parameter type: the same value is read
 * the same way from an API body, an API query and a CLI flag, with messages naming it as its
 * sender spelled it; and the operations that used to live outside ops (put, assign by the
 * policy, import from a stream, backup) work through Operations.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { rawConfig, runCli, testConfig, writeConfig } from '../helpers/sharder.js';
import { opsFixture, who } from '../helpers/ops.js';
import { tempDir } from '../helpers/tmp.js';
import { main } from '../../src/cli/main.js';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { Operations } from '../../src/ops/index.js';
import { OPERATIONS } from '../../src/ops/operations.js';
import { type Channel, type ParamType, bool, choice, text, whole } from '../../src/ops/params.js';
import { cliFlag, isPositional } from '../../src/ops/spec.js';

const seconds = whole({ doc: 'seconds', scale: 1000 });
const millis = whole({ doc: 'ms', flag: { digits: 6, min: 0, expect: 'a whole number of milliseconds' } });

const cases: [string, ParamType<unknown>, Channel, string, unknown, unknown, string?, string?][] = [
  // [what, type, channel, key, raw, value, error code, error message]
  ['text from a body', text, 'body', 'reason', 'why', 'why'],
  [
    'empty text in a body',
    text,
    'body',
    'reason',
    '',
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'field "reason" must be a non-empty string',
  ],
  [
    'a number as text in a body',
    text,
    'body',
    'bucket',
    3,
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'field "bucket" must be a non-empty string',
  ],
  ['text from a query', text, 'query', 'kind', 'hub', 'hub'],
  ['bool in a body', bool, 'body', 'stop_servers', true, true],
  [
    '"true" in a body',
    bool,
    'body',
    'stop_servers',
    'true',
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'field "stop_servers" must be true or false',
  ],
  ['1 in a query', bool, 'query', 'overwrite', '1', true],
  ['false in a query', bool, 'query', 'overwrite', 'false', false],
  [
    'yes in a query',
    bool,
    'query',
    'overwrite',
    'yes',
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'query parameter "overwrite" must be true or false',
  ],
  ['a switch on the command line', bool, 'flag', 'dry-run', true, true],
  ['seconds in a body', seconds, 'body', 'stop_timeout', 2, 2000],
  [
    'negative seconds in a body',
    seconds,
    'body',
    'stop_timeout',
    -1,
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'field "stop_timeout" must be a non-negative number',
  ],
  ['seconds in a query', seconds, 'query', 'stop_timeout', '0', 0],
  [
    'words in a query',
    seconds,
    'query',
    'stop_timeout',
    'soon',
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'query parameter "stop_timeout" must be a whole number',
  ],
  ['seconds on the command line', seconds, 'flag', 'stop-timeout', '5', 5000],
  [
    'zero seconds on the command line',
    seconds,
    'flag',
    'stop-timeout',
    '0',
    undefined,
    'SHARD_ERR_USAGE',
    '--stop-timeout must be a positive whole number, got "0"',
  ],
  ['a pause of 0 on the command line', millis, 'flag', 'pause', '0', 0],
  [
    'a long pause on the command line',
    millis,
    'flag',
    'pause',
    '1000000',
    undefined,
    'SHARD_ERR_USAGE',
    '--pause must be a whole number of milliseconds, got "1000000"',
  ],
  ['a format in a query', choice(['csv', 'jsonl']), 'query', 'format', 'jsonl', 'jsonl'],
  [
    'an unknown format in a query',
    choice(['csv', 'jsonl']),
    'query',
    'format',
    'xml',
    undefined,
    'SHARD_ERR_BAD_INPUT',
    'format must be one of csv, jsonl',
  ],
  [
    'an unknown format on the command line',
    choice(['csv', 'jsonl']),
    'flag',
    'format',
    'xml',
    undefined,
    'SHARD_ERR_USAGE',
    '--format must be one of csv, jsonl',
  ],
];

for (const [what, type, channel, key, raw, value, code, message] of cases) {
  test(`parameter types: ${what}`, () => {
    if (code === undefined) assert.deepEqual(type.parse(raw, { channel, key }), value);
    else assert.throws(() => type.parse(raw, { channel, key }), { code, message });
  });
}

test('descriptions: names are unique per operation, path parameters match the route, every CLI flag is in a command', () => {
  const flags = new Set(COMMANDS.flatMap((c) => c.options.map((o) => `${c.name}:${o.flag}`)));
  for (const op of OPERATIONS) {
    assert.equal(new Set(op.params.map((p) => p.key)).size, op.params.length, `${op.name}: request fields are unique`);
    assert.equal(new Set(op.params.map((p) => p.name)).size, op.params.length, `${op.name}: API names are unique`);
    assert.ok(op.params.filter(isPositional).length <= 1, `${op.name}: at most one positional argument`);
    for (const p of op.params) assert.match(p.name, /^[a-z][a-z_]*$/, `${op.name}.${p.key}: API names are snake_case`);
    if (op.api) {
      const segments = op.api.path
        .split('/')
        .filter((s) => s.startsWith(':'))
        .map((s) => s.slice(1))
        .sort();
      assert.deepEqual(
        op.params
          .filter((p) => p.api === 'path')
          .map((p) => p.name)
          .sort(),
        segments,
        `${op.name}: path parameters`,
      );
    }
    const command = COMMANDS.find((c) => c.name === op.name);
    if (command)
      for (const p of op.params)
        if (cliFlag(p))
          assert.ok(
            flags.has(`${command.name}:${cliFlag(p)!.name}`),
            `${op.name}.${p.key} is an option of sharder ${command.name}`,
          );
  }
});

test('the usage text is generated: move --help, byte for byte', async () => {
  let out = '';
  const code = await main(['move', '--help'], { out: (t) => void (out += t), err: (t) => void (out += t), env: {} });
  assert.equal(code, 0);
  assert.equal(
    out,
    [
      'move NAME to bucket B (asking its old hub about running servers first, when it has a hub_api)',
      '',
      'Usage: sharder move NAME --to B [--stop-servers | --skip-hub-check] [--reason TEXT] [--kind KIND] [--json]',
      '  -c, --config FILE   configuration file (default: $SHARDER_CONFIG, else ./sharder.yml)',
      '  -k, --kind KIND     kind of object (default: default_kind from the configuration)',
      '  -t, --to B          the bucket to move to (must be in the configuration)',
      "      --stop-servers        stop the user's servers on the old hub (and wait) instead of refusing",
      '      --stop-timeout SECS   how long to wait for a server to stop (default 120)',
      '      --skip-hub-check      do not ask the old hub (its hub_api) about running servers at all',
      '  -r, --reason TEXT   why, for the audit log',
      '      --json          print JSON for scripts',
      '  -h, --help          show this help',
      '',
    ].join('\n'),
  );
});

test('the command line refuses what the description refuses: a missing --to, both safety switches, a zero limit', async () => {
  const run = async (...argv: string[]) => {
    let err = '';
    const code = await main(argv, { out: () => {}, err: (t) => void (err += t), env: {} });
    return { code, err };
  };
  assert.deepEqual(await run('move', 'alice'), {
    code: 2,
    err: 'sharder: move needs --to BUCKET\nRun "sharder --help" for usage.\n',
  });
  assert.deepEqual(await run('delete', 'alice', '--stop-servers', '--skip-hub-check'), {
    code: 2,
    err: 'sharder: --stop-servers and --skip-hub-check exclude each other\nRun "sharder --help" for usage.\n',
  });
  assert.deepEqual(await run('users', '--limit', '0'), {
    code: 2,
    err: 'sharder: --limit must be a positive whole number, got "0"\nRun "sharder --help" for usage.\n',
  });
  assert.deepEqual(await run('migrate'), {
    code: 2,
    err: 'sharder: migrate takes exactly one bucket FROM\nRun "sharder --help" for usage.\n',
  });
});

test('put moves an object that has a bucket and assigns one that has none; assignByPolicy keeps an existing bucket', async (t) => {
  const f = opsFixture(t);
  const first = await f.ops.put({ name: 'ann', bucket: 'hub-1', ...who });
  assert.deepEqual([first.action, first.from, first.to], ['assign', null, 'hub-1']);
  const again = await f.ops.put({ name: 'ann', bucket: 'hub-1', ...who });
  assert.equal(again.action, 'none');
  const moved = await f.ops.put({ name: 'ann', bucket: 'hub-2', ...who, skipHubCheck: true });
  assert.deepEqual([moved.action, moved.from, moved.to], ['move', 'hub-1', 'hub-2']);
  assert.deepEqual(await f.ops.assignByPolicy({ name: 'ann' }), {
    kind: 'hub',
    name: 'ann',
    bucket: 'hub-2',
    created: false,
  });
  const fresh = await f.ops.assignByPolicy({ name: 'bob' });
  assert.equal(fresh.created, true);
  assert.equal((await f.ops.find(undefined, 'bob')).bucket, fresh.bucket);
});

test('importStream spools its input and imports it; a longer input than maxBytes is refused with nothing imported', async (t) => {
  const f = opsFixture(t);
  const csv = 'kind,name,bucket,assigned_at\nhub,carl,hub-0,\nhub,dora,hub-1,\n';
  const r = await f.ops.importStream(Readable.from([csv]), { source: 'test input', ...who });
  assert.deepEqual([r.source, r.format, r.inserted], ['test input', 'csv', 2]);
  await assert.rejects(
    f.ops.importStream(Readable.from(['hub,eve,hub-0,\n'.repeat(100)]), { source: 'big', maxBytes: 64, ...who }),
    { code: 'SHARD_ERR_PAYLOAD_TOO_LARGE' },
  );
  await assert.rejects(f.ops.find(undefined, 'eve'), { code: 'SHARD_ERR_NOT_FOUND' });
});

test('backup works without opening the store; on PostgreSQL it names pg_dump and never the password', async (t) => {
  const dir = tempDir(t);
  const ops = Operations.withoutStore(
    testConfig(dir, { database: 'postgres://sharder:s3cret-pw@db.example:5432/sharder' }),
  );
  await assert.rejects(ops.backup({ target: '/tmp/x.dump' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SHARD_ERR_BACKUP_UNSUPPORTED');
    assert.match(
      err.message,
      /pg_dump --format=custom --file=\/tmp\/x\.dump 'postgres:\/\/sharder@db\.example:5432\/sharder'/,
    );
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
});

test('sharder import - reads standard input through ops (spooled), and assign goes through ops', async (t) => {
  const dir = tempDir(t);
  const cfg = writeConfig(dir, rawConfig(dir));
  const imported = await runCli(['import', '-', '--config', cfg, '--json'], {
    input: 'kind,name,bucket,assigned_at\nhub,fay,hub-2,\n',
  });
  assert.equal(imported.code, 0, imported.stderr);
  const report = JSON.parse(imported.stdout) as { source: string; inserted: number };
  assert.deepEqual([report.source, report.inserted], ['standard input', 1]);
  assert.deepEqual(await runCli(['assign', 'fay', '--config', cfg]), { code: 0, stdout: 'hub-2\n', stderr: '' });
  const assigned = await runCli(['assign', 'gil', '--to', 'hub-1', '--config', cfg, '--json']);
  assert.deepEqual(JSON.parse(assigned.stdout), { kind: 'hub', name: 'gil', bucket: 'hub-1', created: true });
});
