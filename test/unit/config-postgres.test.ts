import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { applyEnv } from '../../src/config/load.js';
import type { Config, RawConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { resolvePostgres } from '../../src/store/postgres/connect.js';
import { tempDir } from '../helpers/tmp.js';

const SECRET = 's3cr3t-Pa55';
const kinds = { hub: { buckets: [{ name: 'hub-0' }] } };

function problems(raw: RawConfig, env: NodeJS.ProcessEnv = {}): string[] {
  const sources = applyEnv(raw, env);
  try {
    validateConfig({ kinds, ...raw }, 'sharder.yml', sources);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n');
  }
}

function pgConfig(raw: RawConfig): Extract<Config['database'], { backend: 'postgres' }> {
  const c = validateConfig({ kinds, ...raw }, 'sharder.yml');
  assert.equal(c.database.backend, 'postgres');
  return c.database;
}

describe('postgres configuration: validation', () => {
  const cases: Array<[string, RawConfig, string[], NodeJS.ProcessEnv?]> = [
    [
      'a full URL is accepted',
      { database: `postgres://sharder:${SECRET}@db.example.org:5433/sharder?sslmode=verify-full` },
      [],
    ],
    ['postgresql: and a bare postgres: are accepted', { database: 'postgres:' }, []],
    ['a Unix socket directory is accepted', { database: 'postgresql:///sharder?host=/var/run/postgresql' }, []],
    [
      'the postgres section with every key',
      {
        database: 'postgres://h/db',
        postgres: {
          pool_max: 20,
          idle_timeout_ms: 10000,
          connection_timeout_ms: 2000,
          statement_timeout_ms: 3000,
          password_file: '/run/secrets/pg',
          ssl: { mode: 'verify-full', ca_file: '/etc/ssl/db-ca.pem' },
        },
      },
      [],
    ],
    [
      'an invalid URL is reported without its value',
      { database: `postgres://sharder:${SECRET}@db:notaport/x` },
      [
        'sharder.yml: database: is not a valid postgres:// URL (write postgres://USER@HOST:PORT/DATABASE; percent-encode special characters in the password, or use postgres.password_file)',
      ],
    ],
    [
      'an unsupported URL parameter',
      { database: `postgres://h/db?password=${SECRET}` },
      [
        'sharder.yml: database: has the unsupported parameter "password" (supported: host, port, user, dbname, ' +
          'sslmode, sslrootcert, application_name, target_session_attrs; pool and timeouts go in the postgres: ' +
          'section)',
      ],
    ],
    [
      'sslmode prefer is refused with the reason',
      { database: 'postgres://h/db?sslmode=prefer' },
      [
        'sharder.yml: database: ?sslmode= sslmode "prefer" is not supported (the driver cannot fall back ' +
          'between TLS and plain): use disable, require, verify-ca, verify-full',
      ],
    ],
    [
      'a password in the URL and a password file',
      { database: `postgres://u:${SECRET}@h/db`, postgres: { password_file: '/p' } },
      ['sharder.yml: postgres.password_file: is set, but the database URL holds a password too: keep one of them'],
    ],
    [
      'sslmode in the URL and a different ssl.mode',
      { database: 'postgres://h/db?sslmode=require', postgres: { ssl: { mode: 'verify-full' } } },
      ["sharder.yml: postgres.ssl.mode: differs from the database URL's ?sslmode=: set it in one place"],
    ],
    [
      'bad section values, each reported',
      {
        database: 'postgres://h/db',
        postgres: { pool_max: 0, statement_timeout_ms: 'soon', ssl: { mode: 'on', ca: 'x' }, extra: 1 },
      },
      [
        'sharder.yml: postgres.extra: unknown key (known: pool_max, idle_timeout_ms, connection_timeout_ms, ' +
          'statement_timeout_ms, password_file, ssl, hosts, target_session_attrs)',
        'sharder.yml: postgres.ssl.ca: unknown key (known: mode, ca_file)',
        'sharder.yml: postgres.ssl.mode: must be one of disable, require, verify-ca, verify-full, got the string "on"',
        'sharder.yml: postgres.pool_max: must be a whole number from 1 to 1000, got number 0',
        'sharder.yml: postgres.statement_timeout_ms: must be a whole number from 100 to 600000, got the string "soon"',
      ],
    ],
    [
      'a multi-host URL with target_session_attrs is accepted',
      { database: `postgres://u:${SECRET}@db1:5432,db2:5432,[::1]:5433/sharder?target_session_attrs=read-write` },
      [],
    ],
    [
      'hosts and target_session_attrs as section keys are accepted',
      {
        database: 'postgres:///sharder',
        postgres: { hosts: ['db1:5432', 'db2', '[fd00::2]:6432'], target_session_attrs: 'primary' },
      },
      [],
    ],
    [
      'an empty host in the host list',
      { database: `postgres://u:${SECRET}@db1,,db2/x` },
      ['sharder.yml: database: has an empty host in its host list'],
    ],
    [
      'a bad port in the host list',
      { database: `postgres://u:${SECRET}@db1:5432,db2:99999/x` },
      ['sharder.yml: database: has an invalid host in its host list (write HOST:PORT, or [IPv6]:PORT)'],
    ],
    [
      '?port= with a count that matches neither one nor the hosts',
      { database: 'postgres:///x?host=a,b,c&port=1,2' },
      ['sharder.yml: database: has 2 ports in ?port= for 3 hosts: give one port, or one per host'],
    ],
    [
      'a standby target is refused: the sharder writes',
      { database: 'postgres://a,b/x?target_session_attrs=standby' },
      [
        'sharder.yml: database: ?target_session_attrs= "standby" is not supported: the sharder writes (use ' +
          'any, read-write, primary)',
      ],
    ],
    [
      'hosts in the URL and in the section',
      { database: 'postgres://a/x', postgres: { hosts: ['b:5432'] } },
      ['sharder.yml: postgres.hosts: is set, but the database URL names a host too: name the hosts in one place'],
    ],
    [
      'target_session_attrs in both places',
      { database: 'postgres:///x?target_session_attrs=any', postgres: { target_session_attrs: 'read-write' } },
      [
        'sharder.yml: postgres.target_session_attrs: is set, but the database URL has ?target_session_attrs= ' +
          'too: set it in one place',
      ],
    ],
    [
      'bad failover keys, each reported',
      { database: 'postgres:///x', postgres: { hosts: ['ok:1', 'bad:0', 7], target_session_attrs: 'read-only' } },
      [
        'sharder.yml: postgres.hosts: must be a list of HOST:PORT strings (e.g. [db1:5432, db2:5432])',
        'sharder.yml: postgres.target_session_attrs: "read-only" is not supported: the sharder writes (use ' +
          'any, read-write, primary)',
      ],
    ],
    [
      'more than 16 hosts',
      { database: `postgres://u:${SECRET}@${Array.from({ length: 17 }, (_, i) => `h${i}`).join(',')}/x` },
      ['sharder.yml: database: names more than 16 hosts'],
    ],
    [
      'SHARDER_POSTGRES_HOSTS is a comma-separated list, checked like the key',
      { database: 'postgres:///x' },
      [
        'environment: SHARDER_POSTGRES_HOSTS (postgres.hosts): entry 2 is not HOST, HOST:PORT or [IPv6]:PORT ' +
          '(port 1-65535)',
      ],
      { SHARDER_POSTGRES_HOSTS: 'db1:5432, db2:http' },
    ],
    [
      "a bad host among the section's hosts",
      { database: 'postgres:///x', postgres: { hosts: ['ok:1', 'bad:0'] } },
      ['sharder.yml: postgres.hosts: entry 2 is not HOST, HOST:PORT or [IPv6]:PORT (port 1-65535)'],
    ],
    [
      'a CA file with TLS disabled',
      { database: 'postgres://h/db', postgres: { ssl: { mode: 'disable', ca_file: '/ca.pem' } } },
      ['sharder.yml: postgres.ssl.ca_file: is set, but postgres.ssl.mode is disable: remove it or choose verify-full'],
    ],
    [
      'the postgres section is checked with SQLite too',
      { database: 'sqlite:x.db', postgres: 'yes' },
      ['sharder.yml: postgres: must be a mapping, got the string "yes"'],
    ],
    [
      'environment overrides name their variable',
      { database: 'postgres://h/db' },
      [
        'environment: SHARDER_POSTGRES_SSL_MODE (postgres.ssl.mode): must be one of disable, require, ' +
          'verify-ca, verify-full, got the string "maybe"',
        'environment: SHARDER_POSTGRES_POOL_MAX (postgres.pool_max): must be a whole number from 1 to 1000, ' +
          'got the string "many"',
      ],
      { SHARDER_POSTGRES_SSL_MODE: 'maybe', SHARDER_POSTGRES_POOL_MAX: 'many' },
    ],
  ];
  for (const [name, raw, expected, env] of cases) {
    test(name, () => {
      const got = problems(structuredClone(raw), env);
      assert.deepEqual(got, expected);
      for (const line of got) assert.ok(!line.includes(SECRET), `no secret in: ${line}`);
    });
  }

  test('defaults', () => {
    const db = pgConfig({ database: 'postgres://h/db' });
    assert.deepEqual(db.options, {
      poolMax: 10,
      idleTimeoutMs: 30000,
      connectionTimeoutMs: 3000,
      statementTimeoutMs: 5000,
      passwordFile: null,
      ssl: { mode: null, caFile: null },
      hosts: null,
      targetSessionAttrs: null,
    });
  });
});

describe('postgres configuration: resolving the connection', () => {
  const resolve = (raw: RawConfig, env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) =>
    resolvePostgres(pgConfig(raw), {
      file: 'sharder.yml',
      env,
      readFile: (p) => {
        if (!(p in files)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
        return Buffer.from(files[p]!);
      },
    });
  const pw = (c: object): unknown => (c as { password?: string }).password;

  test('URL parts, a hidden password, a location without it', () => {
    const r = resolve({ database: `postgres://sharder:${encodeURIComponent(SECRET)}@db.example.org:5433/assign` });
    assert.equal(r.client.host, 'db.example.org');
    assert.equal(r.client.port, 5433);
    assert.equal(r.client.user, 'sharder');
    assert.equal(r.client.database, 'assign');
    assert.equal(pw(r.client), SECRET);
    assert.equal(pw(r.pool), SECRET);
    assert.equal(r.location, 'postgres://sharder@db.example.org:5433/assign');
    assert.ok(
      !JSON.stringify(r.pool).includes(SECRET) && !JSON.stringify(r.client).includes(SECRET),
      'the password is not enumerable',
    );
    assert.equal(r.pool.max, 10);
    assert.equal(r.pool.statement_timeout, 5000);
    assert.equal(r.client.ssl, false);
  });

  test('postgres: takes every part from the PG* variables; URL parts win over them', () => {
    const env = {
      PGHOST: 'pg.internal',
      PGPORT: '6432',
      PGUSER: 'svc',
      PGPASSWORD: SECRET,
      PGDATABASE: 'shards',
      PGSSLMODE: 'require',
      PGAPPNAME: 'sharder-eu',
    };
    const a = resolve({ database: 'postgres:' }, env);
    assert.deepEqual(
      [a.client.host, a.client.port, a.client.user, a.client.database, pw(a.client), a.client.application_name],
      ['pg.internal', 6432, 'svc', 'shards', SECRET, 'sharder-eu'],
    );
    assert.deepEqual(a.client.ssl, { rejectUnauthorized: false });
    const b = resolve({ database: 'postgres://other:5432/db2?sslmode=disable' }, env);
    assert.deepEqual(
      [b.client.host, b.client.port, b.client.database, b.client.user, b.client.ssl],
      ['other', 5432, 'db2', 'svc', false],
    );
  });

  test('defaults: localhost:5432, the OS user, a database named after the user', () => {
    const r = resolve({ database: 'postgres://' }, { USER: 'jupyter' });
    assert.deepEqual(
      [r.client.host, r.client.port, r.client.user, r.client.database, pw(r.client)],
      ['localhost', 5432, 'jupyter', 'jupyter', undefined],
    );
  });

  test('several hosts: in order, each with its port or the default; read-write unless told otherwise; all in the location', () => {
    const a = resolve({ database: `postgres://svc:${SECRET}@db1:5433,db2,[fd00::2]:6432/sharder` }, { PGPORT: '5999' });
    assert.deepEqual(a.hosts, [
      { host: 'db1', port: 5433 },
      { host: 'db2', port: 5999 },
      { host: 'fd00::2', port: 6432 },
    ]);
    assert.equal(a.targetSessionAttrs, 'read-write');
    assert.deepEqual([a.client.host, a.client.port], ['db1', 5433]);
    assert.equal(a.location, 'postgres://svc@db1:5433,db2:5999,[fd00::2]:6432/sharder');
    const b = resolve({ database: 'postgres:///sharder?user=svc&host=a,b&port=1,2&target_session_attrs=any' });
    assert.deepEqual(
      [b.hosts, b.targetSessionAttrs],
      [
        [
          { host: 'a', port: 1 },
          { host: 'b', port: 2 },
        ],
        'any',
      ],
    );
    const c = resolve({
      database: 'postgres:///sharder?user=svc',
      postgres: { hosts: ['x:7', 'y'], target_session_attrs: 'primary' },
    });
    assert.deepEqual(
      [c.hosts, c.targetSessionAttrs],
      [
        [
          { host: 'x', port: 7 },
          { host: 'y', port: 5432 },
        ],
        'primary',
      ],
    );
    const d = resolve({ database: 'postgres:' }, { PGHOST: 'p1,p2', PGUSER: 'svc' });
    assert.deepEqual(
      d.hosts,
      [
        { host: 'p1', port: 5432 },
        { host: 'p2', port: 5432 },
      ],
      'PGHOST may be a list, as in libpq',
    );
    const comma = resolve({ database: `postgres://svc:${encodeURIComponent('pa,ss')}@solo/sharder` });
    assert.deepEqual(
      [comma.hosts, pw(comma.client)],
      [[{ host: 'solo', port: 5432 }], 'pa,ss'],
      'a comma in the password is no host list',
    );
    const one = resolve({ database: 'postgres://svc@solo/sharder' });
    assert.deepEqual([one.hosts, one.targetSessionAttrs], [[{ host: 'solo', port: 5432 }], 'any']);
  });

  test('a Unix socket directory', () => {
    const r = resolve({ database: 'postgresql:///sharder?host=/var/run/postgresql&user=svc' });
    assert.equal(r.client.host, '/var/run/postgresql');
    assert.equal(r.location, 'postgres://svc@[/var/run/postgresql]:5432/sharder');
  });

  test('password_file: its first line, before PGPASSWORD; an unreadable one is a config error naming the key', () => {
    const r = resolve(
      { database: 'postgres://u@h/db', postgres: { password_file: '/run/secrets/pg' } },
      { PGPASSWORD: 'other' },
      { '/run/secrets/pg': `${SECRET}\n` },
    );
    assert.equal(pw(r.client), SECRET);
    assert.throws(
      () => resolve({ database: 'postgres://u@h/db', postgres: { password_file: '/missing' } }),
      (err: ConfigError) => {
        assert.deepEqual(err.problems, [
          {
            source: 'sharder.yml',
            key: 'postgres.password_file',
            message: "cannot be read (ENOENT): it must name a file readable by the sharder's user",
          },
        ]);
        return true;
      },
    );
    assert.throws(
      () => resolve({ database: 'postgres://u@h/db', postgres: { password_file: '/empty' } }, {}, { '/empty': '\n' }),
      { code: 'SHARD_ERR_CONFIG' },
    );
  });

  test('TLS modes as libpq has them', () => {
    const ca = { '/ca.pem': 'CA' };
    const verifyFull = resolve(
      { database: 'postgres://h/db', postgres: { ssl: { mode: 'verify-full', ca_file: '/ca.pem' } } },
      {},
      ca,
    ).client.ssl as Record<string, unknown>;
    assert.equal(verifyFull.rejectUnauthorized, true);
    assert.equal(String(verifyFull.ca), 'CA');
    assert.equal(verifyFull.checkServerIdentity, undefined, 'verify-full checks the host name');
    const verifyCa = resolve({ database: 'postgres://h/db?sslmode=verify-ca&sslrootcert=/ca.pem' }, {}, ca).client
      .ssl as Record<string, unknown>;
    assert.equal(verifyCa.rejectUnauthorized, true);
    assert.equal(typeof verifyCa.checkServerIdentity, 'function', 'verify-ca does not check the host name');
    // libpq: require with a root certificate behaves as verify-ca.
    const requireCa = resolve({ database: 'postgres://h/db?sslmode=require' }, { PGSSLROOTCERT: '/ca.pem' }, ca).client
      .ssl as Record<string, unknown>;
    assert.equal(requireCa.rejectUnauthorized, true);
    assert.throws(
      () => resolve({ database: 'postgres://h/db' }, { PGSSLMODE: 'prefer' }),
      (err: ConfigError) => {
        assert.equal(err.problems[0]!.source, 'environment');
        assert.equal(err.problems[0]!.key, 'PGSSLMODE');
        return true;
      },
    );
    assert.throws(() => resolve({ database: 'postgres://h/db?sslmode=verify-full&sslrootcert=/nope.pem' }), {
      code: 'SHARD_ERR_CONFIG',
    });
  });

  test('check-config accepts a postgres configuration without connecting', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'sharder.yml');
    writeFileSync(
      file,
      `database: postgres://sharder@127.0.0.1:1/nowhere\nkinds: { hub: { buckets: [ { name: hub-0 } ] } }\n`,
    );
    const { runCli } = await import('../helpers/sharder.js');
    const r = await runCli(['check-config', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
  });
});
