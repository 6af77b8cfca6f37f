/**
 * Guessing admin tokens: failures are counted per peer address and, past the limit, that
 * address gets 429 with Retry-After on every authenticated route (even with the right token,
 * so a guess cannot be confirmed) while other addresses and /auth are unaffected.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { AUTH_FAILURES_ALLOWED, FailureLimiter } from '../src/http/rate-limit.js';
import { Sharder } from '../src/server.js';
import { get } from './helpers/http.js';
import { testConfig } from './helpers/sharder.js';
import { tempDir } from './helpers/tmp.js';

const ADMIN = 'admin-token-0123456789abcdef';

/** A request from a chosen loopback source address (Linux routes all of 127/8 to lo). */
function call(url: string, path: string, from: string, token: string | null): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { localAddress: from, agent: false, headers: token === null ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  });
}

test('too many failed admin authentications from one address: 429 with Retry-After there, others unaffected', async (t) => {
  const dir = tempDir(t);
  let logs = '';
  const sink = new Writable({ write(chunk, _enc, cb) { logs += String(chunk); cb(); } });
  const sharder = await Sharder.start(testConfig(dir, { admin: { token: ADMIN } }), { log: pino({ level: 'info' }, sink) });
  t.after(() => sharder.stop(1000));
  const control = sharder.controlUrl!;

  for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) {
    const r = await call(control, i % 2 === 0 ? '/api/buckets' : '/api/objects/hub/x', '127.0.0.1', i % 3 === 0 ? null : `guess-${i}-0123456789abcdef`);
    assert.equal(r.status, 401, `attempt ${i}`);
  }
  for (const token of [`guess-x-0123456789abcdef`, ADMIN]) {
    const r = await call(control, '/api/buckets', '127.0.0.1', token);
    assert.equal(r.status, 429, r.body);
    assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_RATE_LIMITED');
    const wait = Number(r.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${String(r.headers['retry-after'])}`);
  }
  // Another address still authenticates; the main listener is not affected at all.
  assert.equal((await call(control, '/api/buckets', '127.0.0.2', ADMIN)).status, 200);
  assert.equal((await call(control, '/api/buckets', '127.0.0.2', 'wrong-0123456789abcdefgh')).status, 401);
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'alice' })).status, 200);
  assert.equal(logs.match(/"event":"api_rate_limited"/g)?.length, 1, 'the limit is logged once, not per request');
  assert.ok(!logs.includes(ADMIN) && !logs.includes('guess-'), 'no token reaches the log');
});

test('the failure window ends: the peer may try again, and memory stays bounded', () => {
  let now = 0;
  const l = new FailureLimiter(3, 1000, () => now);
  assert.equal(l.fail('a'), false);
  assert.equal(l.fail('a'), false);
  assert.equal(l.retryAfter('a'), 0);
  assert.equal(l.fail('a'), true);
  now = 400;
  assert.equal(l.retryAfter('a'), 1);
  assert.equal(l.retryAfter('b'), 0);
  now = 1000;
  assert.equal(l.retryAfter('a'), 0);
  for (let i = 0; i < 20_000; i++) l.fail(`peer-${i}`);
  assert.ok((l as unknown as { peers: Map<string, unknown> }).peers.size <= 10_000);
});
