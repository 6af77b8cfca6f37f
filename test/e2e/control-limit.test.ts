/**
 * Guessing tokens on the control listener: every route's failures (/api, /status, /metrics)
 * are counted per source in one limiter (http/gate.ts); past the limit the source gets 429 with
 * Retry-After on every route that needs credentials (even with the right token, so a guess
 * cannot be confirmed). All of loopback is one source, and workers: N share one limit.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { pino } from 'pino';
import { AUTH_FAILURES_ALLOWED, FailureLimiter } from '../../src/http/rate-limit.js';
import { Sharder } from '../../src/process/sharder.js';
import { get } from '../helpers/http.js';
import { rawConfig, spawnServe, testConfig, writeConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN = 'admin-token-0123456789abcdef';

/** A request from a chosen loopback source address (Linux routes all of 127/8 to lo). */
function call(
  url: string,
  path: string,
  from: string,
  token: string | null,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}${path}`,
      { localAddress: from, agent: false, headers: token === null ? {} : { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => (body += d))
          .on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject).end();
  });
}

test('too many failed admin authentications from one source: 429 with Retry-After; another loopback address is the same source', async (t) => {
  const dir = tempDir(t);
  const { sink, text: logs } = logRecorder();
  const sharder = await Sharder.start(testConfig(dir, { admin: { token: ADMIN } }), {
    log: pino({ level: 'info' }, sink),
  });
  t.after(() => sharder.stop(1000));
  const control = sharder.controlUrl!;

  for (let i = 0; i < AUTH_FAILURES_ALLOWED; i++) {
    const r = await call(
      control,
      i % 2 === 0 ? '/api/buckets' : '/api/objects/hub/x',
      '127.0.0.1',
      i % 3 === 0 ? null : `guess-${i}-0123456789abcdef`,
    );
    assert.equal(r.status, 401, `attempt ${i}`);
  }
  for (const token of [`guess-x-0123456789abcdef`, ADMIN]) {
    const r = await call(control, '/api/buckets', '127.0.0.1', token);
    assert.equal(r.status, 429, r.body);
    assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_RATE_LIMITED');
    const wait = Number(r.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${String(r.headers['retry-after'])}`);
  }
  // Moving to another loopback address does not dodge the limit; the main listener is not
  // affected at all.
  assert.equal((await call(control, '/api/buckets', '127.0.0.2', ADMIN)).status, 429);
  assert.equal((await call(control, '/api/buckets', '127.0.0.9', 'wrong-0123456789abcdefgh')).status, 429);
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'alice' })).status, 200);
  assert.equal(logs().match(/"event":"api_rate_limited"/g)?.length, 1, 'the limit is logged once, not per request');
  assert.ok(!logs().includes(ADMIN) && !logs().includes('guess-'), 'no token reaches the log');
});

test('/status and /metrics guesses are throttled by the same limiter as /api', async (t) => {
  const dir = tempDir(t);
  const sharder = await Sharder.start(
    testConfig(dir, {
      admin: { token: ADMIN },
      metrics: { token: 'metrics-token-0123456789abcdef' },
      status: { loopback_without_token: false },
    }),
    { log: pino({ level: 'silent' }) },
  );
  t.after(() => sharder.stop(1000));
  const control = sharder.controlUrl!;
  const statuses: number[] = [];
  for (let i = 0; i < 100; i++)
    statuses.push(
      (
        await call(
          control,
          i % 2 === 0 ? '/status' : '/metrics',
          `127.0.0.${2 + (i % 50)}`,
          `guess-${i}-0123456789abcdef`,
        )
      ).status,
    );
  assert.equal(
    statuses.filter((s) => s === 401).length,
    AUTH_FAILURES_ALLOWED,
    'exactly the allowed number of guesses is looked at',
  );
  assert.deepEqual([...new Set(statuses.slice(AUTH_FAILURES_ALLOWED))], [429]);
  // The source waits, whichever route it turns to, and whatever token it now holds.
  assert.equal((await call(control, '/api/buckets', '127.0.0.1', ADMIN)).status, 429);
  const basic = await new Promise<number>((resolve, reject) => {
    httpRequest(
      `${control}/status`,
      { agent: false, headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    )
      .on('error', reject)
      .end();
  });
  assert.equal(basic, 429);
});

test('workers: 2 share one limit: the group looks at no more guesses than one process would', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { workers: 2, admin: { token: ADMIN } }));
  const { control, logged } = await spawnServe(t, file);
  // Both workers' listeners up (each logs "started" once all of its listeners listen), so that
  // the primary hands connections to both: one started late would see too few guesses to refuse.
  await logged(/"event":"started"/, 2);
  const statuses: number[] = [];
  for (let i = 0; i < 3 * AUTH_FAILURES_ALLOWED; i++)
    statuses.push((await call(control!, '/api/buckets', '127.0.0.1', `guess-${i}-0123456789abcdef`)).status);
  const looked = statuses.filter((s) => s === 401).length;
  assert.ok(
    looked <= AUTH_FAILURES_ALLOWED,
    `${looked} guesses were looked at with 2 workers (limit ${AUTH_FAILURES_ALLOWED})`,
  );
  assert.ok(looked >= AUTH_FAILURES_ALLOWED / 2, `${looked}: each worker still allows its share`);
  assert.equal(statuses.at(-1), 429);
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
