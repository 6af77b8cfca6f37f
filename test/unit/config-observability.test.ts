/** Validation of log.format, metrics and status: defaults, environment, exact messages, secrets never echoed. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { rawConfig, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const SECRET = 'metrics-secret-0123456789abcdef';
const KINDS = { kinds: { hub: { buckets: [{ name: 'hub-0' }] } } };

function problems(raw: Record<string, unknown>): string[] {
  try {
    validateConfig({ ...KINDS, ...raw }, 'sharder.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.key}: ${p.message}`);
    throw err;
  }
  return [];
}

test('observability defaults', () => {
  const c = validateConfig(KINDS, null);
  assert.deepEqual(c.log, { level: 'info', format: 'auto' });
  assert.deepEqual(c.metrics, { enabled: true, tokenHash: null, gc: false, listen: null });
  assert.deepEqual(c.status, { loopbackWithoutToken: true, refreshSeconds: 30 });
});

test('metrics token from the file, a token file, or the environment; kept as a digest', (t) => {
  const dir = tempDir(t);
  const sha = createHash('sha256').update(SECRET).digest();
  assert.deepEqual(validateConfig({ ...KINDS, metrics: { token: SECRET } }, null).metrics.tokenHash, sha);
  const file = join(dir, 'metrics-token');
  writeFileSync(file, `${SECRET}\n`);
  assert.deepEqual(validateConfig({ ...KINDS, metrics: { token_file: file } }, null).metrics.tokenHash, sha);
  const path = writeConfig(dir, rawConfig(dir));
  const c = loadConfig({
    file: path,
    env: {
      SHARDER_METRICS_TOKEN: SECRET,
      SHARDER_METRICS_ENABLED: 'false',
      SHARDER_LOG_FORMAT: 'pretty',
      SHARDER_STATUS_LOOPBACK_WITHOUT_TOKEN: 'no',
      SHARDER_STATUS_REFRESH_SECONDS: '0',
    },
  });
  assert.deepEqual(c.metrics, { enabled: false, tokenHash: sha, gc: false, listen: null });
  assert.equal(c.log.format, 'pretty');
  assert.deepEqual(c.status, { loopbackWithoutToken: false, refreshSeconds: 0 });
  assert.ok(!JSON.stringify(c).includes(SECRET));
});

test('metrics.gc and metrics.listen, from the file or the environment', (t) => {
  assert.deepEqual(validateConfig({ ...KINDS, metrics: { gc: true, listen: '[::1]:9090' } }, null).metrics, {
    enabled: true,
    tokenHash: null,
    gc: true,
    listen: { host: '::1', port: 9090 },
  });
  assert.equal(validateConfig({ ...KINDS, metrics: { listen: 'off' } }, null).metrics.listen, null);
  const dir = tempDir(t);
  const c = loadConfig({
    file: writeConfig(dir, rawConfig(dir)),
    env: { SHARDER_METRICS_GC: 'yes', SHARDER_METRICS_LISTEN: '9090' },
  });
  assert.deepEqual([c.metrics.gc, c.metrics.listen], [true, { host: '127.0.0.1', port: 9090 }]);
});

test('observability problems are reported with exact messages and never show the token', (t) => {
  const dir = tempDir(t);
  const cases: [string, Record<string, unknown>, string[]][] = [
    [
      'format',
      { log: { format: 'xml' } },
      [
        'log.format: must be one of auto, json, journal, pretty (auto: pretty on a terminal, journal under ' +
          'systemd, JSON otherwise), got the string "xml"',
      ],
    ],
    ['unknown log key', { log: { colour: true } }, ['log.colour: unknown key (known: level, format)']],
    [
      'enabled not boolean',
      { metrics: { enabled: 'yes' } },
      ['metrics.enabled: must be true or false, got the string "yes"'],
    ],
    [
      'short token',
      { metrics: { token: 'short' } },
      ['metrics.token: is shorter than 16 characters: use a long random value, e.g. from `openssl rand -hex 32`'],
    ],
    [
      'token and file',
      { metrics: { token: SECRET, token_file: '/x' } },
      ['metrics.token: give metrics.token or metrics.token_file, not both'],
    ],
    [
      'token with a space',
      { metrics: { token: `${SECRET} x` } },
      ['metrics.token: must be printable ASCII with no spaces (it is sent in an HTTP header)'],
    ],
    [
      'missing token file',
      { metrics: { token_file: join(dir, 'nope') } },
      [`metrics.token_file: "${join(dir, 'nope')}" cannot be read (it does not exist)`],
    ],
    [
      'unknown metrics key',
      { metrics: { path: '/m' } },
      ['metrics.path: unknown key (known: enabled, token, token_file, gc, listen)'],
    ],
    ['gc not boolean', { metrics: { gc: 'on' } }, ['metrics.gc: must be true or false, got the string "on"']],
    [
      'listen not an address',
      { metrics: { listen: 'localhost' } },
      [
        'metrics.listen: must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port number, got the ' +
          'string "localhost"',
      ],
    ],
    [
      'listen with metrics off',
      { metrics: { enabled: false, listen: '127.0.0.1:9090' } },
      ['metrics.listen: needs metrics.enabled: true (it serves only /metrics)'],
    ],
    ['metrics not a mapping', { metrics: true }, ['metrics: must be a mapping, got boolean true']],
    [
      'refresh too long',
      { status: { refresh_seconds: 7200 } },
      ['status.refresh_seconds: must be a whole number from 0 (no refresh) to 3600, got number 7200'],
    ],
    [
      'refresh not whole',
      { status: { refresh_seconds: 1.5 } },
      ['status.refresh_seconds: must be a whole number from 0 (no refresh) to 3600, got number 1.5'],
    ],
    [
      'loopback not boolean',
      { status: { loopback_without_token: 'maybe' } },
      ['status.loopback_without_token: must be true or false, got the string "maybe"'],
    ],
  ];
  for (const [what, raw, expected] of cases) {
    const got = problems(raw);
    assert.deepEqual(got, expected, what);
    assert.ok(!got.join('\n').includes(SECRET), `${what}: the token is not echoed`);
  }
});
