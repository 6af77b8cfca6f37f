import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { applyEnv, loadConfig, readConfigFile } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const minimal = { kinds: { hub: { buckets: [{ name: 'hub-0' }] } } };

test('defaults: a minimal config gets every documented default', () => {
  const c = validateConfig(minimal, 'sharder.yml');
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8888 });
  assert.deepEqual(c.database, { backend: 'sqlite', path: './data/sharder.db', busyTimeoutMs: 5000 });
  assert.deepEqual(c.identity, { header: 'REMOTE_USER', trustedProxies: ['127.0.0.0/8', '::1/128'], maxLength: 256 });
  assert.deepEqual(c.cookie, { name: 'hub', secure: false, secret: null });
  assert.deepEqual(c.shard, { redirect: null });
  assert.equal(c.defaultKind, 'hub');
  assert.equal(c.kindHeader, null, 'no kind header: routing depends on the identity alone');
  assert.deepEqual(c.cache, { maxEntries: 1_000_000 });
  assert.deepEqual(c.store, { pollMs: 500, timeoutMs: 5000, snapshotFile: null });
  assert.deepEqual(c.kinds.get('hub')?.buckets, [
    { name: 'hub-0', upstream: null, weight: 1, state: 'active', hubApi: undefined },
  ]);
});

test('the shipped sharder.yml is valid', () => {
  const c = loadConfig({ file: 'sharder.yml', env: {} });
  assert.deepEqual(
    c.kinds.get('hub')?.buckets.map((b) => b.name),
    ['hub-0', 'hub-1', 'hub-2'],
  );
});

/** Each row: a raw config and the exact problem lines expected (file "f.yml"). */
const invalid: Array<[string, unknown, string[]]> = [
  [
    'unknown top-level key',
    { ...minimal, lissen: 1 },
    [
      'f.yml: lissen: unknown key (known: listen, workers, mode, proxy, control_listen, admin, database, ' +
        'identity, cookie, shard, default_kind, kind_header, cache, store, log, metrics, status, postgres, ' +
        'mariadb, kinds)',
    ],
  ],
  [
    'unknown section key',
    { ...minimal, cookie: { nam: 'x' } },
    ['f.yml: cookie.nam: unknown key (known: name, secure, secret, secret_file)'],
  ],
  [
    'empty kinds',
    { kinds: {} },
    [
      'f.yml: kinds: must map each kind to its buckets (e.g. kinds: { hub: { buckets: [ { name: hub-0 } ] } ' +
        '}), got a mapping',
    ],
  ],
  [
    'no kinds',
    {},
    [
      'f.yml: kinds: must map each kind to its buckets (e.g. kinds: { hub: { buckets: [ { name: hub-0 } ] } ' +
        '}), got nothing',
    ],
  ],
  [
    'empty bucket list',
    { kinds: { hub: { buckets: [] } } },
    ['f.yml: kinds.hub.buckets: must be a non-empty list of buckets, got an empty list'],
  ],
  [
    'duplicate bucket',
    { kinds: { hub: { buckets: [{ name: 'a' }, { name: 'a' }] } } },
    [
      'f.yml: kinds.hub.buckets[1].name: duplicate bucket name "a" (also at buckets[0]): bucket names must be ' +
        'unique within a kind',
    ],
  ],
  [
    'bad bucket name',
    { kinds: { hub: { buckets: [{ name: 'a b;' }] } } },
    [
      'f.yml: kinds.hub.buckets[0].name: use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter ' +
        'or digit, got the string "a b;"',
    ],
  ],
  [
    'bad upstream',
    { kinds: { hub: { buckets: [{ name: 'a', upstream: 'ftp//x' }] } } },
    ['f.yml: kinds.hub.buckets[0].upstream: must be an http:// or https:// URL, got the string "ftp//x"'],
  ],
  [
    'upstream scheme',
    { kinds: { hub: { buckets: [{ name: 'a', upstream: 'ftp://x' }] } } },
    ['f.yml: kinds.hub.buckets[0].upstream: must use http:// or https://, got the string "ftp://x"'],
  ],
  [
    'bad weight',
    { kinds: { hub: { buckets: [{ name: 'a', weight: 0 }] } } },
    ['f.yml: kinds.hub.buckets[0].weight: must be a number greater than 0 (at most 1000000), got number 0'],
  ],
  [
    'bad state',
    { kinds: { hub: { buckets: [{ name: 'a', state: 'off' }] } } },
    ['f.yml: kinds.hub.buckets[0].state: must be one of active, draining, got the string "off"'],
  ],
  [
    'bad listen',
    { ...minimal, listen: 'localhost' },
    [
      'f.yml: listen: must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port number, got the string ' +
        '"localhost"',
    ],
  ],
  [
    'port range',
    { ...minimal, listen: '127.0.0.1:70000' },
    ['f.yml: listen: port 70000 is out of range 0-65535, got the string "127.0.0.1:70000"'],
  ],
  [
    'bad database',
    { ...minimal, database: 'redis://x' },
    [
      'f.yml: database: must be sqlite:PATH (e.g. sqlite:./data/sharder.db), postgres://USER@HOST:PORT/DB (or postgres: to take everything from PG* variables) or mysql://USER@HOST:PORT/DB (MariaDB or MySQL; mariadb:// too)',
    ],
  ],
  [
    'a MariaDB URL without a database',
    { ...minimal, database: 'mysql://x' },
    ['f.yml: database: names no database: mysql://USER@HOST:3306/DB'],
  ],
  [
    'a MariaDB URL with an unknown parameter',
    { ...minimal, database: 'mariadb://u@h/db?ssl=1' },
    ['f.yml: database: has an unknown parameter ?ssl=: use ?sslmode=, ?sslrootcert=, ?socket='],
  ],
  [
    'a MariaDB sslmode that does not exist',
    { ...minimal, database: 'mysql://u@h/db', mariadb: { ssl: { mode: 'prefer' } } },
    [
      'f.yml: mariadb.ssl.mode: sslmode "prefer" is not supported (the driver cannot fall back between TLS and ' +
        'plain): use disable, require, verify-ca, verify-full, got the string "prefer"',
    ],
  ],
  [
    'a MariaDB password twice',
    { ...minimal, database: 'mysql://u:secret@h/db', mariadb: { password_file: '/run/pw' } },
    ['f.yml: mariadb.password_file: is set, but the database URL holds a password too: keep one of them'],
  ],
  [
    'a MariaDB pool out of range',
    { ...minimal, database: 'mysql://u@h/db', mariadb: { pool_max: 0 } },
    ['f.yml: mariadb.pool_max: must be a whole number from 1 to 1000, got number 0'],
  ],
  [
    'bad cidr',
    { ...minimal, identity: { trusted_proxies: ['10.0.0.0/33', 'nope'] } },
    [
      'f.yml: identity.trusted_proxies[0]: "10.0.0.0/33" has an invalid prefix length',
      'f.yml: identity.trusted_proxies[1]: "nope" is not an IP address or CIDR range',
    ],
  ],
  [
    'bad header name',
    { ...minimal, identity: { header: 'REMOTE USER' } },
    ['f.yml: identity.header: is not a valid header name: the string "REMOTE USER"'],
  ],
  [
    'wrong type',
    { ...minimal, cookie: { secure: 'yes' } },
    ['f.yml: cookie.secure: must be true or false, got the string "yes"'],
  ],
  [
    'default kind missing',
    { ...minimal, default_kind: 'home' },
    ['f.yml: default_kind: names kind "home", which is not under kinds (have: hub)'],
  ],
  [
    'kind header equals identity header',
    { ...minimal, kind_header: 'remote_user' },
    ['f.yml: kind_header: must differ from identity.header (in either "_" or "-" spelling)'],
  ],
  [
    'section not a mapping',
    { ...minimal, identity: 'REMOTE_USER' },
    ['f.yml: identity: must be a mapping, got the string "REMOTE_USER"'],
  ],
  [
    'bad redirect',
    { ...minimal, shard: { redirect: 'http://[' } },
    ['f.yml: shard.redirect: must be a URL template such as "https://{bucket}/jupyter/hub", got the string "http://["'],
  ],
  // Values written into response headers are checked as they will be written (the WHATWG URL
  // parser drops newlines and accepts non-ASCII hosts; Node's header writer throws on both).
  [
    'upstream with a newline',
    { kinds: { hub: { buckets: [{ name: 'a', upstream: 'http://127.0.0.1:2\n1902' }] } } },
    [
      'f.yml: kinds.hub.buckets[0].upstream: must not contain white space or control characters (it is sent in a response header), got the string "http://127.0.0.1:2\\n1902"',
    ],
  ],
  [
    'upstream with an IDN host',
    { kinds: { hub: { buckets: [{ name: 'a', upstream: 'http://bücher.example:8000' }] } } },
    [
      'f.yml: kinds.hub.buckets[0].upstream: must be ASCII (it is sent in a response header): write the host in its ASCII form, xn--bcher-kva.example:8000, got the string "http://bücher.example:8000"',
    ],
  ],
  [
    'redirect with an IDN host',
    { ...minimal, shard: { redirect: 'https://пример.рф/{bucket}' } },
    [
      'f.yml: shard.redirect: must be ASCII (it is sent in a response header): write the host in its ASCII form, xn--e1afmkfd.xn--p1ai, got the string "https://пример.рф/{bucket}"',
    ],
  ],
  [
    'redirect with a tab',
    { ...minimal, shard: { redirect: 'https://{bucket}/\thub' } },
    [
      'f.yml: shard.redirect: must not contain white space or control characters (it is sent in a response header), got the string "https://{bucket}/\\thub"',
    ],
  ],
  [
    'login_url with an IDN host',
    { ...minimal, proxy: { login_url: 'https://bücher.example/login?next={next}' } },
    [
      'f.yml: proxy.login_url: must be ASCII (it is sent in a response header): write the host in its ASCII form, xn--bcher-kva.example, got the string "https://bücher.example/login?next={next}"',
    ],
  ],
  [
    'login_url path with non-ASCII',
    { ...minimal, proxy: { login_url: '/anmeldung/ü' } },
    ['f.yml: proxy.login_url: must be ASCII (it is sent in a response header), got the string "/anmeldung/ü"'],
  ],
  [
    'log level',
    { ...minimal, log: { level: 'loud' } },
    ['f.yml: log.level: must be one of trace, debug, info, warn, error, fatal, silent, got the string "loud"'],
  ],
  ['not a mapping', ['a'], ['f.yml: (top level): must be a mapping of keys to values, got a list']],
];

for (const [name, raw, expected] of invalid) {
  test(`invalid config: ${name}`, () => {
    assert.throws(
      () => validateConfig(raw, 'f.yml'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'SHARD_ERR_CONFIG');
        assert.deepEqual(err.message.split('\n'), expected);
        return true;
      },
    );
  });
}

test('every problem is reported at once', () => {
  const raw = {
    listen: 'x',
    cookie: { secure: 1 },
    kinds: { hub: { buckets: [{ name: 'a' }, { name: 'a', weight: -1 }] } },
  };
  assert.throws(
    () => validateConfig(raw, 'f.yml'),
    (err: ConfigError) => err.problems.length === 4,
  );
});

test('a postgres URL with a password is never echoed in a problem', () => {
  assert.throws(
    () => validateConfig({ ...minimal, database: 'postgres://u:s3cret@[bad/db' }, 'f.yml'),
    (err: ConfigError) => {
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    },
  );
});

test('environment overrides every scalar key and names the variable in problems', () => {
  const raw: Record<string, unknown> = { ...minimal };
  const sources = applyEnv(raw, {
    SHARDER_LISTEN: '0.0.0.0:9999',
    SHARDER_IDENTITY_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.1',
    SHARDER_COOKIE_SECURE: 'true',
    SHARDER_CACHE_MAX_ENTRIES: '42',
    SHARDER_KINDS: '{home: {buckets: [{name: fs-0}]}}',
    SHARDER_DEFAULT_KIND: 'home',
  });
  const c = validateConfig(raw, 'f.yml', sources);
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 9999 });
  assert.deepEqual(c.identity.trustedProxies, ['10.0.0.0/8', '192.168.1.1']);
  assert.equal(c.cookie.secure, true);
  assert.equal(c.cache.maxEntries, 42);
  assert.deepEqual([...c.kinds.keys()], ['home']);

  const bad: Record<string, unknown> = { ...minimal };
  const s2 = applyEnv(bad, { SHARDER_COOKIE_SECURE: 'maybe', SHARDER_STORE_POLL_MS: 'fast' });
  assert.throws(
    () => validateConfig(bad, 'f.yml', s2),
    (err: ConfigError) => {
      assert.deepEqual(err.message.split('\n'), [
        'environment: SHARDER_COOKIE_SECURE (cookie.secure): must be true or false, got the string "maybe"',
        'environment: SHARDER_STORE_POLL_MS (store.poll_ms): must be a whole number from 50 to 60000, got the ' +
          'string "fast"',
      ]);
      return true;
    },
  );
});

test('files: missing, not UTF-8, not YAML, too large, alias bomb, duplicate keys: clear errors naming the file', (t) => {
  const dir = tempDir(t);
  const f = (name: string, content: string | Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  const cases: Array<[string, RegExp]> = [
    [join(dir, 'absent.yml'), /absent\.yml: \(file\): does not exist/],
    [f('latin1.yml', Buffer.from([0x6b, 0x3a, 0x20, 0xe9, 0x0a])), /latin1\.yml: \(file\): is not valid UTF-8 text/],
    [f('broken.yml', 'kinds: [\n'), /broken\.yml: line \d+, column \d+: not valid YAML/],
    [
      f('huge.yml', `# ${'x'.repeat(1024 * 1024 + 10)}\n`),
      /huge\.yml: \(file\): is \d+ bytes; a config file may be at most 1048576/,
    ],
    [
      f(
        'bomb.yml',
        'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c ' +
          '[*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: ' +
          '[*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n',
      ),
      /bomb\.yml: \(document\): cannot be expanded/,
    ],
    [f('dup.yml', 'listen: 1\nlisten: 2\n'), /dup\.yml: line 2, column 1: not valid YAML: Map keys must be unique/],
    [f('scalar.yml', 'just text\n'), /scalar\.yml: \(top level\): must be a mapping/],
  ];
  for (const [file, re] of cases) {
    assert.throws(
      () => readConfigFile(file),
      (err: ConfigError) => {
        assert.equal(err.code, 'SHARD_ERR_CONFIG');
        assert.match(err.message, re);
        return true;
      },
      file,
    );
  }
});

test('SHARDER_CONFIG names the file when --config is not given', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'other.yml');
  writeFileSync(file, 'listen: 127.0.0.1:7777\nkinds: {hub: {buckets: [{name: x}]}}\n');
  assert.equal(loadConfig({ env: { SHARDER_CONFIG: file } }).listen.port, 7777);
});

/**
 * Keys that Object.prototype also has: each is an unknown key like any typo, at every level,
 * from the file and from the environment. (A lookup with `in` or `KNOWN[k]` found them:
 * `toString: 1` passed, `constructor: {}` crashed the loader with a TypeError.)
 */
test('prototype-named keys (__proto__, constructor, toString, …) are unknown keys at every level, naming the file and key', (t) => {
  const dir = tempDir(t);
  const TOP =
    'unknown key (known: listen, workers, mode, proxy, control_listen, admin, database, identity, cookie, ' +
    'shard, default_kind, kind_header, cache, store, log, metrics, status, postgres, mariadb, kinds)';
  const kinds = (hub: string, bucket = '') => `kinds:\n  hub:\n${hub}    buckets:\n      - name: hub-0\n${bucket}`;
  const plain = kinds('');
  const cases: Array<[string, string, string]> = [
    [`${plain}__proto__: {a: 1}\n`, '__proto__', TOP],
    [`${plain}constructor: {a: 1}\n`, 'constructor', TOP],
    [`${plain}constructor: 1\n`, 'constructor', TOP],
    [`${plain}toString: 1\n`, 'toString', TOP],
    [`${plain}hasOwnProperty: x\n`, 'hasOwnProperty', TOP],
    [`${plain}valueOf: [1]\n`, 'valueOf', TOP],
    [
      `${plain}identity:\n  __proto__: {header: X}\n`,
      'identity.__proto__',
      'unknown key (known: header, trusted_proxies, max_length)',
    ],
    [`${plain}cookie:\n  toString: 1\n`, 'cookie.toString', 'unknown key (known: name, secure, secret, secret_file)'],
    [kinds('    constructor: {}\n'), 'kinds.hub.constructor', 'unknown key (known: buckets)'],
    [
      kinds('', '        __proto__: {weight: 5}\n'),
      'kinds.hub.buckets[0].__proto__',
      'unknown key (known: name, upstream, weight, state, hub_api)',
    ],
    [
      kinds('', '        hub_api: {url: "http://h/", token: t, toString: 1}\n'),
      'kinds.hub.buckets[0].hub_api.toString',
      'unknown key (known: url, token, token_file, token_env)',
    ],
    [
      `${plain}admin:\n  tokens:\n    - {name: ops, token: ${'a'.repeat(40)}, constructor: 1}\n`,
      'admin.tokens[0].constructor',
      'unknown key (known: name, token, token_file)',
    ],
    [`${plain}postgres:\n  ssl: {__proto__: 1}\n`, 'postgres.ssl.__proto__', 'unknown key (known: mode, ca_file)'],
  ];
  for (const [text, key, message] of cases) {
    const file = join(dir, 'proto.yml');
    writeFileSync(file, text);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${key}: ${(err as Error).stack}`);
        assert.deepEqual(err.problems, [{ source: file, key, message }], key);
        return true;
      },
    );
  }
  // The same through the environment (SHARDER_KINDS is YAML).
  writeFileSync(join(dir, 'proto.yml'), plain);
  assert.throws(
    () =>
      loadConfig({
        file: join(dir, 'proto.yml'),
        env: { SHARDER_KINDS: '{hub: {buckets: [{name: a}], __proto__: {x: 1}}}' },
      }),
    (err: ConfigError) => {
      assert.ok(
        err.problems.some((p) => p.source === 'environment' && p.key === 'SHARDER_KINDS (kinds.hub.__proto__)'),
        err.message,
      );
      return true;
    },
  );
  assert.ok(
    Object.prototype.hasOwnProperty.call(Object.prototype, 'toString') && !('x' in Object.prototype),
    'nothing was polluted',
  );
});
