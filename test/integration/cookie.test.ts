/**
 * The signed `hub` cookie (cookie.secret, cookie.secret_file, SHARDER_COOKIE_SECRET): the value
 * is `<bucket>.<HMAC-SHA256>`, a forged or tampered cookie presented by a client changes
 * nothing and is logged at warn, a stale one (validly signed, another bucket) is replaced, and
 * the secret never appears in errors or logs.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { readCookie } from '../../src/http/cookie.js';
import { Sharder } from '../../src/process/sharder.js';
import { get } from '../helpers/http.js';
import { rawConfig, runCli, testConfig, writeConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

const SECRET = 'cookie-secret-0123456789abcdef0123456789abcdef';
const sig = (bucket: string, secret = SECRET, name = 'hub'): string =>
  createHmac('sha256', secret).update(`${name}=${bucket}`).digest('base64url');

/**
 * 32 bytes are 43 base64url characters whose last one carries 2 unused bits: the character
 * that differs only in those bits decodes to the same bytes.
 */
const lastCharTwin = (s: string): string => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return ALPHABET[ALPHABET.indexOf(s.at(-1)!) ^ 1]!;
};

async function start(t: HasAfter) {
  const dir = tempDir(t);
  const { sink, text: logs } = logRecorder();
  const sharder = await Sharder.start(testConfig(dir, { cookie: { secret: SECRET } }), {
    log: pino({ level: 'info' }, sink),
  });
  t.after(() => sharder.stop(1000));
  return { sharder, url: sharder.url, logs };
}

test('with cookie.secret the cookie is <bucket>.<HMAC-SHA256 of "hub=<bucket>">, on /auth and /shard', async (t) => {
  const s = await start(t);
  const r = await get(`${s.url}/auth`, { REMOTE_USER: 'alice' });
  assert.equal(r.status, 200);
  const bucket = String(r.headers['x-shard-bucket']);
  assert.equal(r.headers['set-cookie'], `hub=${bucket}.${sig(bucket)}; Path=/; HttpOnly; SameSite=Lax`);
  const shard = await get(`${s.url}/shard`, { REMOTE_USER: 'alice' });
  assert.match(
    String(shard.headers['set-cookie']),
    new RegExp(`^hub=${bucket}\\.${sig(bucket).replace(/[-]/g, '\\-')};`),
  );
  assert.ok(!s.logs().includes(SECRET));
});

test('a forged or tampered cookie changes nothing and is logged at warn; a stale signed one is replaced; a good one is silent', async (t) => {
  const s = await start(t);
  const first = await get(`${s.url}/auth`, { REMOTE_USER: 'bob' });
  const bucket = String(first.headers['x-shard-bucket']);
  const other = bucket === 'hub-2' ? 'hub-1' : 'hub-2';
  const good = `${bucket}.${sig(bucket)}`;
  const forged = [
    other, // unsigned, as the original sharder set it
    `${other}.${sig(bucket)}`, // another bucket with this bucket's signature
    `${other}.${sig(other, 'guessed-secret-0123456789abcdef0123456789')}`, // signed with a guessed key
    `${other}.`,
    `.${sig(other)}`,
    `${other}.${sig(other).slice(0, -2)}`,
    `${other}.!!!`,
    // The right value with bytes appended or swapped that a lenient base64url decoder skips
    // or folds onto the same signature: each is tampered, never "stale" or "good".
    `${good}!!!`,
    `${good}=`,
    `${good}==`,
    `${good}.`,
    `${good} x`,
    `${good.slice(0, -1)}!${good.slice(-1)}`,
    `${bucket}.${sig(bucket).slice(0, 10)}*${sig(bucket).slice(10)}`,
    `${bucket}.${sig(bucket).replace(/-/g, '+').replace(/_/g, '/')}`,
    `${bucket}.${sig(bucket).slice(0, -1)}${lastCharTwin(sig(bucket))}`,
  ];
  for (const value of forged) {
    const before = (s.logs().match(/"event":"cookie_forged"/g) ?? []).length;
    const r = await get(`${s.url}/auth`, {
      REMOTE_USER: 'bob',
      cookie: `_xsrf=1; hub=${value}; jupyterhub-session-id=x`,
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-shard-bucket'], bucket, `${value} must not move bob`);
    assert.equal(
      r.headers['set-cookie'],
      `hub=${good}; Path=/; HttpOnly; SameSite=Lax`,
      'the answer carries the true cookie',
    );
    assert.equal((s.logs().match(/"event":"cookie_forged"/g) ?? []).length, before + 1, `${value} logged once`);
  }
  assert.match(s.logs(), /"level":40,[^\n]*"event":"cookie_forged"[^\n]*"name":"bob"/);
  const stale = await get(`${s.url}/auth`, { REMOTE_USER: 'bob', cookie: `hub=${other}.${sig(other)}` });
  assert.equal(stale.headers['x-shard-bucket'], bucket);
  assert.match(s.logs(), /"event":"cookie_stale"/);
  const logged = s.logs().length;
  await get(`${s.url}/auth`, { REMOTE_USER: 'bob', cookie: `hub=${good}` });
  await get(`${s.url}/auth`, { REMOTE_USER: 'bob', cookie: 'other=1' });
  assert.equal(s.logs().length, logged, 'the right cookie, or none, logs nothing');
});

test('without a secret nothing is compared or logged (the original, unsigned cookie)', async (t) => {
  const dir = tempDir(t);
  const { sink, text: logs } = logRecorder();
  const sharder = await Sharder.start(testConfig(dir), { log: pino({ level: 'info' }, sink) });
  t.after(() => sharder.stop(1000));
  const r = await get(`${sharder.url}/auth`, { REMOTE_USER: 'carol', cookie: 'hub=hub-2.forged' });
  assert.match(String(r.headers['set-cookie']), /^hub=hub-\d; /);
  assert.doesNotMatch(logs(), /cookie_/);
});

test('cookie.secret, cookie.secret_file and SHARDER_COOKIE_SECRET; too short or both: a clear error that never shows the secret', async (t) => {
  const dir = tempDir(t);
  const fileSecret = join(dir, 'cookie-secret');
  writeFileSync(fileSecret, `${SECRET}\n`, { mode: 0o600 });
  const load = (cookie: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
    loadConfig({ file: writeConfig(dir, rawConfig(dir, { cookie })), env });
  assert.equal(load({ secret: SECRET }).cookie.secret, SECRET);
  assert.equal(load({ secret_file: fileSecret }).cookie.secret, SECRET);
  assert.equal(load({}, { SHARDER_COOKIE_SECRET: SECRET }).cookie.secret, SECRET);
  assert.equal(load({}).cookie.secret, null);
  for (const [cookie, key, why] of [
    [{ secret: 'short-secret' }, 'cookie.secret', /too short/],
    [{ secret: SECRET, secret_file: fileSecret }, 'cookie.secret', /not both/],
    [{ secret_file: join(dir, 'missing') }, 'cookie.secret_file', /does not exist/],
    [{ secret: 42 }, 'cookie.secret', /non-empty string/],
  ] as const) {
    assert.throws(
      () => load(cookie),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const p = err.problems.find((x) => x.key === key);
        assert.ok(p, `${key}: ${err.message}`);
        assert.match(p.message, why);
        assert.ok(!err.message.includes('short-secret') && !err.message.includes(SECRET));
        return true;
      },
    );
  }
  const r = await runCli([
    'check-config',
    '--config',
    writeConfig(dir, rawConfig(dir, { cookie: { secret: 'short-secret' } })),
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cookie\.secret: is too short/);
  assert.ok(!r.stderr.includes('short-secret') && !r.stdout.includes('short-secret'));
});

test('readCookie finds the cookie among others, with or without spaces', () => {
  assert.equal(readCookie('a=1; hub=x.y; b=2', 'hub'), 'x.y');
  assert.equal(readCookie('hub=x', 'hub'), 'x');
  assert.equal(readCookie('xhub=1;hub = z ', 'hub'), 'z');
  assert.equal(readCookie('hubx=1', 'hub'), undefined);
  assert.equal(readCookie('', 'hub'), undefined);
});
