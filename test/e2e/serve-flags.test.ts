/**
 * `sharder serve --listen ADDR --control-listen ADDR --metrics-listen ADDR --database URL
 * --log-level LEVEL --mode MODE`: one precedence (flag over SHARDER_* variable over file), the
 * file's validators with messages that name the flag, no password on a command line, and a
 * sharder started from a unit-file-like command line with no configuration file at all.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLAG_KEYS, envName, loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { get } from '../helpers/http.js';
import { rawConfig, runCliProcess, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

/** For each flag: the file's value, the variable's, the flag's, and how the result reads back. */
const LAYERS: Record<
  string,
  { file: unknown; env: string; flag: string; read: (c: Config) => unknown; want: [unknown, unknown, unknown] }
> = {
  listen: {
    file: '127.0.0.1:7001',
    env: '127.0.0.1:7002',
    flag: '[::1]:7003',
    read: (c) => c.listen,
    want: [
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
      { host: '::1', port: 7003 },
    ],
  },
  'control-listen': {
    file: '127.0.0.1:7011',
    env: '7012',
    flag: 'off',
    read: (c) => c.controlListen,
    want: [{ host: '127.0.0.1', port: 7011 }, { host: '127.0.0.1', port: 7012 }, null],
  },
  'metrics-listen': {
    file: 'off',
    env: '127.0.0.1:7022',
    flag: '0.0.0.0:7023',
    read: (c) => c.metrics.listen,
    want: [null, { host: '127.0.0.1', port: 7022 }, { host: '0.0.0.0', port: 7023 }],
  },
  database: {
    file: 'sqlite:/tmp/file.db',
    env: 'sqlite:/tmp/env.db',
    flag: 'postgres://sharder@db.internal:5432/sharder',
    read: (c) => (c.database.backend === 'sqlite' ? c.database.path : c.database.url),
    want: ['/tmp/file.db', '/tmp/env.db', 'postgres://sharder@db.internal:5432/sharder'],
  },
  'log-level': {
    file: 'warn',
    env: 'error',
    flag: 'debug',
    read: (c) => c.log.level,
    want: ['warn', 'error', 'debug'],
  },
  mode: { file: 'auth', env: 'proxy', flag: 'auth', read: (c) => c.mode, want: ['auth', 'proxy', 'auth'] },
};

test('every serve flag: the flag over its SHARDER_* variable over the file', (t) => {
  assert.deepEqual(FLAG_KEYS.map(([f]) => f).sort(), Object.keys(LAYERS).sort(), 'each flag has a row here');
  const dir = tempDir(t);
  for (const [flag, path] of FLAG_KEYS) {
    const l = LAYERS[flag]!;
    const raw = rawConfig(dir);
    const parts = path.split('.');
    if (parts.length === 1) raw[path] = l.file;
    else raw[parts[0]!] = { ...(raw[parts[0]!] as object), [parts[1]!]: l.file };
    const file = writeConfig(dir, raw, `${flag}.yml`);
    const env = { [envName(path)]: l.env };
    assert.deepEqual(l.read(loadConfig({ file, env: {} })), l.want[0], `${flag}: the file`);
    assert.deepEqual(l.read(loadConfig({ file, env })), l.want[1], `${flag}: ${envName(path)} over the file`);
    assert.deepEqual(
      l.read(loadConfig({ file, env, flags: { [flag]: l.flag } })),
      l.want[2],
      `--${flag} over ${envName(path)}`,
    );
  }
});

test("flag values go through the file's validators, and every problem names its flag", (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir));
  const problems = (flags: Record<string, string>): string[] => {
    try {
      loadConfig({ file, env: {}, flags });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.source}: ${p.key}: ${p.message}`);
      throw err;
    }
    return [];
  };
  assert.deepEqual(
    problems({
      listen: 'nope',
      'control-listen': '99999',
      'metrics-listen': ':x',
      'log-level': 'loud',
      mode: 'both',
      database: 'redis://h/db',
    }),
    [
      'command line: --log-level (log.level): must be one of trace, debug, info, warn, error, fatal, silent, ' +
        'got the string "loud"',
      'command line: --listen (listen): must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port ' +
        'number, got the string "nope"',
      'command line: --mode (mode): must be one of auth, proxy, got the string "both"',
      'command line: --control-listen (control_listen): port 99999 is out of range 0-65535, got the string "99999"',
      'command line: --database (database): must be sqlite:PATH (e.g. sqlite:./data/sharder.db), postgres://USER@HOST:PORT/DB (or postgres: to take everything from PG* variables) or mysql://USER@HOST:PORT/DB (MariaDB or MySQL; mariadb:// too)',
      'command line: --metrics-listen (metrics.listen): must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) ' +
        'or a port number, got the string ":x"',
    ],
  );
  // The same value from the environment is the environment's problem, and is named so.
  assert.throws(
    () => loadConfig({ file, env: { SHARDER_LISTEN: 'nope' } }),
    (err: ConfigError) =>
      err.problems[0]!.source === 'environment' && err.problems[0]!.key === 'SHARDER_LISTEN (listen)',
  );
});

test('--database refuses a password, which a command line shows to every user; the message does not repeat it', (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir));
  const password = 'pw-0123456789-secret';
  assert.throws(
    () => loadConfig({ file, env: {}, flags: { database: `postgres://sharder:${password}@db.internal/sharder` } }),
    (err: ConfigError) => {
      assert.deepEqual(
        err.problems.map((p) => `${p.source}: ${p.key}: ${p.message}`),
        [
          'command line: --database (database): holds a password, which every user of this machine can read on ' +
            'a command line (ps): give it in SHARDER_DATABASE, PGPASSWORD or postgres.password_file instead',
        ],
      );
      assert.ok(!err.message.includes(password));
      return true;
    },
  );
  // The same URL in the environment or the file is allowed (neither is visible to other users).
  assert.equal(
    loadConfig({ file, env: { SHARDER_DATABASE: `postgres://sharder:${password}@db.internal/sharder` } }).database
      .backend,
    'postgres',
  );
});

test('serve with flags and variables only, no configuration file, as from a unit file', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'state', 'sharder.db');
  const env = {
    SHARDER_KINDS: JSON.stringify({ hub: { buckets: [{ name: 'hub-a' }, { name: 'hub-b' }] } }),
    SHARDER_LISTEN: '127.0.0.1:1',
  };
  const args = [
    '--listen',
    '127.0.0.1:0',
    '--control-listen',
    'off',
    '--metrics-listen',
    '127.0.0.1:0',
    '--database',
    `sqlite:${db}`,
    '--log-level',
    'info',
  ];
  const { url, control, output } = await spawnServe(t, null, env, args, { cwd: dir });
  assert.equal(control, null, '--control-listen off');
  assert.equal(
    (await get(`${url}/auth`, { REMOTE_USER: 'ann' })).headers['x-shard-bucket'],
    'hub-a',
    '--listen 127.0.0.1:0 wins over SHARDER_LISTEN',
  );
  const metrics = /"metrics_listen":"(http:\/\/[^"]+)"/.exec(output())?.[1];
  assert.ok(metrics, output());
  assert.equal((await get(`${metrics}/metrics`)).status, 200);
  assert.match(output(), new RegExp(`"location":"${db.replaceAll('/', '\\/')}"`));

  // check-config in the same folder agrees, and says where the configuration came from.
  const check = await runCliProcess(['check-config'], { cwd: dir, env });
  assert.equal(check.code, 0, check.stderr);
  assert.equal(check.stdout, 'configuration (environment and flags, no file): OK (hub: 2 buckets)\n');
  // Without the variables, the missing default file is named first.
  const bare = await runCliProcess(['serve', '--listen', '127.0.0.1:0'], { cwd: dir, env: { SHARDER_KINDS: '' } });
  assert.equal(bare.code, 2);
  assert.match(
    bare.stderr,
    /^ {2}sharder\.yml: \(file\): does not exist, so the configuration came from SHARDER_\* variables and flags alone/m,
  );
  assert.doesNotMatch(bare.stderr, /\n\s+at /, 'no stack trace');
});
