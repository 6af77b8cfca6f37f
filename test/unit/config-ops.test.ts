/** Validation of control_listen, admin tokens and hub_api: exact messages, secrets never echoed. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { rawConfig, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const SECRET = 'a-secret-token-value-0123456789';
const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

function problems(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    validateConfig({ kinds: { hub: { buckets: [{ name: 'hub-0' }] } }, ...raw }, 'sharder.yml', new Map(), env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.key}: ${p.message}`);
    throw err;
  }
  return [];
}

const hubApi = (v: unknown) => ({ kinds: { hub: { buckets: [{ name: 'hub-0', hub_api: v }] } } });

test('control_listen and admin: defaults and valid forms', (t) => {
  const dir = tempDir(t);
  const c = validateConfig({ kinds: { hub: { buckets: [{ name: 'hub-0' }] } } }, null);
  assert.deepEqual(c.controlListen, { host: '127.0.0.1', port: 8889 });
  assert.deepEqual(c.admin.tokens, []);
  assert.equal(
    validateConfig({ kinds: { hub: { buckets: [{ name: 'h' }] } }, control_listen: 'off' }, null).controlListen,
    null,
  );
  assert.equal(
    validateConfig({ kinds: { hub: { buckets: [{ name: 'h' }] } }, control_listen: null }, null).controlListen,
    null,
  );

  const file = join(dir, 'token');
  writeFileSync(file, 'from-a-file-0123456789\n');
  const multi = validateConfig(
    {
      kinds: { hub: { buckets: [{ name: 'h' }] } },
      admin: {
        token: SECRET,
        tokens: [
          { name: 'alice', token_file: file },
          { name: 'ci-bot', token: 'another-token-0123456789' },
        ],
      },
    },
    null,
  );
  assert.deepEqual(
    multi.admin.tokens.map((x) => x.name),
    ['admin', 'alice', 'ci-bot'],
  );
  assert.deepEqual(multi.admin.tokens[0]!.hash, sha(SECRET), 'kept only as a digest');
  assert.deepEqual(
    multi.admin.tokens[1]!.hash,
    sha('from-a-file-0123456789'),
    "the file's trailing newline is dropped",
  );
  assert.ok(!JSON.stringify(multi).includes(SECRET));
});

test('admin and hub_api problems are reported with exact messages and never show the secret', (t) => {
  const dir = tempDir(t);
  const cases: [string, Record<string, unknown>, string[]][] = [
    [
      'short token',
      { admin: { token: 'short' } },
      ['admin.token: is shorter than 16 characters: use a long random value, e.g. from `openssl rand -hex 32`'],
    ],
    [
      'token with space',
      { admin: { token: `${SECRET} x` } },
      ['admin.token: must be printable ASCII with no spaces (it is sent in an HTTP header)'],
    ],
    [
      'token and file',
      { admin: { token: SECRET, token_file: '/x' } },
      ['admin.token: give admin.token or admin.token_file, not both'],
    ],
    [
      'missing file',
      { admin: { token_file: join(dir, 'nope') } },
      [`admin.token_file: "${join(dir, 'nope')}" cannot be read (it does not exist)`],
    ],
    ['numeric token', { admin: { token: 12345 } }, ['admin.token: must be a non-empty string, got number']],
    [
      'tokens not a list',
      { admin: { tokens: 'x' } },
      ['admin.tokens: must be a list of { name, token } or { name, token_file }, got the string "x"'],
    ],
    [
      'token entry without token',
      { admin: { tokens: [{ name: 'bob' }] } },
      ['admin.tokens[0]: must have exactly one of token or token_file'],
    ],
    [
      'duplicate names',
      { admin: { token: SECRET, tokens: [{ name: 'admin', token: 'different-0123456789' }] } },
      [
        'admin.tokens[0].token: token name "admin" is used twice (also admin.token): the audit log must be ' +
          'able to tell them apart',
      ],
    ],
    [
      'duplicate tokens',
      {
        admin: {
          tokens: [
            { name: 'a', token: SECRET },
            { name: 'b', token: SECRET },
          ],
        },
      },
      ['admin.tokens[1].token: is the same token as admin.tokens[0].token: give each user their own token'],
    ],
    [
      'bad token name',
      { admin: { tokens: [{ name: 'no spaces please', token: SECRET }] } },
      [
        'admin.tokens[0].name: must name who uses the token (1 to 63 letters, digits, ".", "_" or "-"), got ' +
          'the string "no spaces please"',
      ],
    ],
    [
      'unknown admin key',
      { admin: { password: SECRET } },
      ['admin.password: unknown key (known: token, token_file, tokens)'],
    ],
    [
      'control_listen',
      { control_listen: 'nowhere' },
      [
        'control_listen: must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port number, got the ' +
          'string "nowhere"',
      ],
    ],
    [
      'hub_api no token',
      hubApi({ url: 'http://h:8000' }),
      [
        'kinds.hub.buckets[0].hub_api: must have exactly one of token, token_file or token_env (a JupyterHub ' +
          'API token with the read:servers and servers scopes)',
      ],
    ],
    [
      'hub_api two tokens',
      hubApi({ url: 'http://h:8000', token: SECRET, token_env: 'X' }),
      [
        'kinds.hub.buckets[0].hub_api: must have exactly one of token, token_file or token_env (a JupyterHub ' +
          'API token with the read:servers and servers scopes), got token and token_env',
      ],
    ],
    [
      'hub_api bad url',
      hubApi({ url: 'ftp://h', token: SECRET }),
      ['kinds.hub.buckets[0].hub_api.url: must use http:// or https://, got the string "ftp://h"'],
    ],
    [
      'hub_api credentials in url',
      hubApi({ url: `http://u:${SECRET}@h`, token: SECRET }),
      [
        'kinds.hub.buckets[0].hub_api.url: must not contain credentials: give the token in token, token_file ' +
          'or token_env',
      ],
    ],
    [
      'hub_api env unset',
      hubApi({ url: 'http://h', token_env: 'HUB0_TOKEN' }),
      ['kinds.hub.buckets[0].hub_api.token_env: names the environment variable HUB0_TOKEN, which is not set'],
    ],
    [
      'hub_api unknown key',
      hubApi({ url: 'http://h', token: SECRET, secret: 1 }),
      ['kinds.hub.buckets[0].hub_api.secret: unknown key (known: url, token, token_file, token_env)'],
    ],
    [
      'hub_api not a mapping',
      hubApi('http://h'),
      [
        'kinds.hub.buckets[0].hub_api: must be a mapping { url, token | token_file | token_env }, got the string "http://h"',
      ],
    ],
  ];
  for (const [name, raw, want] of cases) {
    const got = problems(raw);
    assert.deepEqual(got, want, name);
    for (const g of got) assert.ok(!g.includes(SECRET), `${name}: the secret leaked into "${g}"`);
  }
});

test('hub_api token from a file or the environment; it is not enumerable, so never serialised', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'hub0.token');
  writeFileSync(file, `${SECRET}\n`);
  const c1 = validateConfig(hubApi({ url: 'http://10.0.0.1:8000/jupyter/', token_file: file }), null);
  const api = c1.kinds.get('hub')!.buckets[0]!.hubApi!;
  assert.equal(api.url, 'http://10.0.0.1:8000/jupyter');
  assert.equal(api.token, SECRET);
  assert.ok(!JSON.stringify(c1.kinds.get('hub')).includes(SECRET));
  assert.ok(!inspect(api, { depth: 5 }).includes(SECRET));
  const c2 = validateConfig(hubApi({ url: 'http://h', token_env: 'HUB0_TOKEN' }), null, new Map(), {
    HUB0_TOKEN: 'from-env-token',
  });
  assert.equal(c2.kinds.get('hub')!.buckets[0]!.hubApi!.token, 'from-env-token');
});

test('SHARDER_ADMIN_TOKEN, SHARDER_ADMIN_TOKEN_FILE and SHARDER_CONTROL_LISTEN override the file', (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { admin: { token: 'in-the-file-0123456789' } }));
  const c = loadConfig({ file, env: { SHARDER_ADMIN_TOKEN: SECRET, SHARDER_CONTROL_LISTEN: '127.0.0.1:9999' } });
  assert.deepEqual(c.admin.tokens, [{ name: 'admin', hash: sha(SECRET) }]);
  assert.deepEqual(c.controlListen, { host: '127.0.0.1', port: 9999 });
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, SECRET);
  const c2 = loadConfig({
    file: writeConfig(dir, rawConfig(dir), 'plain.yml'),
    env: { SHARDER_ADMIN_TOKEN_FILE: tokenFile },
  });
  assert.deepEqual(c2.admin.tokens[0]!.hash, sha(SECRET));
  assert.throws(
    () => loadConfig({ file, env: { SHARDER_ADMIN_TOKEN: 'short' } }),
    (err: ConfigError) => {
      assert.deepEqual(
        err.problems.map((p) => [p.source, p.key]),
        [['environment', 'SHARDER_ADMIN_TOKEN (admin.token)']],
      );
      return true;
    },
  );
});
