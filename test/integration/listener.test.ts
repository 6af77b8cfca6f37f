/**
 * The listener factory (src/http/listener.ts): one suite run against each of the three
 * listeners — main (auth mode), proxy mode's, and control — on real sockets, so that what
 * protects them from slow, malformed and hostile clients cannot drift apart again. Then the
 * last line of defence: a bug that throws while one request is handled answers that request
 * 500 with a request id, and the process keeps serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { Config } from '../../src/config/types.js';
import { HEADERS_TIMEOUT_MS } from '../../src/http/listener.js';
import { Sharder } from '../../src/process/sharder.js';
import { silentLogger } from '../../src/log.js';
import { raw, statusOf } from '../helpers/http.js';
import { startSharder, testConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

interface Listener {
  readonly name: string;
  readonly port: number;
}

async function listeners(t: HasAfter): Promise<Listener[]> {
  const auth = await startSharder(t);
  const proxy = await startSharder(t, { mode: 'proxy' });
  return [
    { name: 'main', port: auth.sharder.port },
    { name: 'proxy', port: proxy.sharder.port },
    { name: 'control', port: Number(new URL(auth.sharder.controlUrl!).port) },
  ];
}

/**
 * Opens a connection, sends the start of a request and never finishes it; resolves with the
 * answer and when it came.
 */
function slowClient(port: number): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s = connect(port, '127.0.0.1');
    let answer = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (answer += d));
    s.once('close', () => resolve({ answer, ms: Date.now() - started }));
    s.on('error', reject);
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  });
}

test('listeners: a client too slow with its headers is answered 408 within the header timeout, on every listener', async (t) => {
  const all = await listeners(t);
  const results = await Promise.all(all.map(async (l) => ({ l, r: await slowClient(l.port) })));
  for (const { l, r } of results) {
    assert.equal(statusOf(r.answer), 408, `${l.name}: ${JSON.stringify(r.answer)}`);
    // The timeout is checked every second: cut between 10 and 12 s, not at Node's 30-40 s.
    assert.ok(r.ms >= HEADERS_TIMEOUT_MS - 100 && r.ms < HEADERS_TIMEOUT_MS + 2_500, `${l.name}: cut after ${r.ms} ms`);
  }
});

const HOSTILE: ReadonlyArray<[string, string, number]> = [
  ['CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 405],
  ['oversized headers', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431],
  ['a malformed header line', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 400],
  [
    'Content-Length with Transfer-Encoding',
    'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    400,
  ],
  ['an absolute-form target', 'GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['an asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
];

test('listeners: hostile requests get the same answers from every listener', async (t) => {
  const all = await listeners(t);
  for (const l of all) {
    for (const [what, bytes, status] of HOSTILE) {
      const answer = await raw(l.port, bytes);
      assert.equal(statusOf(answer), status, `${l.name}, ${what}: ${JSON.stringify(answer.slice(0, 200))}`);
      if (what.includes('target')) assert.match(answer, /SHARD_ERR_BAD_TARGET/, `${l.name}, ${what}`);
    }
    assert.equal(
      statusOf(await raw(l.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')),
      l.name === 'control' ? 404 : l.name === 'proxy' ? 401 : 200,
      `${l.name} still serves`,
    );
  }
});

/** A validated config with a value forced past validation, as a bug elsewhere could leave it. */
function poisoned(dir: string, mode: 'auth' | 'proxy', poison: (c: Config) => void): Config {
  const config = testConfig(dir, {
    mode,
    kinds: { hub: { buckets: [{ name: 'hub-0', upstream: 'http://127.0.0.1:9000' }] } },
  });
  poison(config);
  return config;
}

test('listeners: a request whose answer cannot be written is answered 500 with a request id; the process keeps serving', async (t) => {
  const dir = tempDir(t);
  const config = poisoned(dir, 'auth', (c) => {
    (c.kinds.get('hub')!.buckets[0] as { upstream: string }).upstream = 'http://127.0.0.1:2\n1902';
    (c.shard as { redirect: string }).redirect = 'https://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/{bucket}';
  });
  const sharder = await Sharder.start(config, { log: silentLogger() });
  t.after(() => sharder.stop(1000));
  for (const path of ['/auth', '/shard']) {
    for (let i = 0; i < 3; i++) {
      const answer = await raw(sharder.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nREMOTE_USER: user-${i}\r\n\r\n`);
      assert.equal(statusOf(answer), 500, answer);
      assert.match(answer, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/i);
      assert.match(answer, /SHARD_ERR_INTERNAL/);
    }
  }
  assert.equal(statusOf(await raw(sharder.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')), 200);
});

test('listeners: in proxy mode a login_url that cannot be written answers 500 to anonymous requests, and proxy mode lives on', async (t) => {
  const dir = tempDir(t);
  const config = poisoned(dir, 'proxy', (c) => {
    (c.proxy as { loginUrl: string }).loginUrl = '/login\r\nSet-Cookie: evil=1?next={next}';
  });
  const sharder = await Sharder.start(config, { log: silentLogger() });
  t.after(() => sharder.stop(1000));
  for (let i = 0; i < 3; i++) {
    const answer = await raw(sharder.port, 'GET /hub/home HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n');
    assert.equal(statusOf(answer), 500, answer);
    assert.doesNotMatch(answer, /evil/);
  }
  assert.equal(statusOf(await raw(sharder.port, 'GET /_sharder/healthz HTTP/1.1\r\nHost: x\r\n\r\n')), 200);
});
