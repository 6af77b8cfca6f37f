/**
 * Hostile HTTP against a running sharder over raw sockets (so that nothing undici refuses to
 * send is left out): a seeded fast-check fuzz over methods, paths, identity and kind header
 * values, cookies and header repetitions. Never a 5xx, never a dropped connection without an
 * answer, the server keeps serving, and every name stored is exactly a name that was sent.
 * Then a slow client (slowloris) is cut off by the header timeout, and smuggling attempts are
 * refused. test/integration/http.test.ts holds the fixed cases; this file does not repeat them.
 * SHARDER_FUZZ_RUNS sets the number of cases; SHARDER_FUZZ_SEED the seed.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { get, raw, statusOf } from '../helpers/http.js';
import { bucketsRaw, startSharder } from '../helpers/sharder.js';

const RUNS = Number(process.env.SHARDER_FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.SHARDER_FUZZ_SEED ?? 20261124);

/** Sends one request (with Connection: close) and returns the whole answer. */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within 5 s to ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`));
    }, 5000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.on('error', () => undefined); // a reset after the answer: judged by what arrived
    sock.end(bytes);
  });
}

const headerName = fc.constantFrom(
  'REMOTE_USER',
  'remote_user',
  'Remote-User',
  'REMOTE-USER',
  'X-Shard-Kind',
  'x-shard-kind',
  'Cookie',
  'Host',
  'Content-Length',
  'Transfer-Encoding',
  'Connection',
  'X-Other',
  'Expect',
  'Upgrade',
);
/** Header values as bytes: UTF-8 text, arbitrary bytes, and values aimed at the parser. */
const headerValue = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc
    .constantFrom(
      'hub',
      'lab',
      'nope',
      'hub-0',
      'hub=hub-1',
      'hub=hub-0.forged',
      'chunked',
      '0',
      '-1',
      '4',
      'close',
      'keep-alive',
      '100-continue',
      'h2c',
      ' alice',
      'alice ',
      'a\tb',
      '\u0085',
      "x'; DROP TABLE assignments; --",
    )
    .map((s) => Buffer.from(s, 'utf8')),
  fc.integer({ min: 200, max: 20_000 }).map((n) => Buffer.alloc(n, 'a')),
);
const method = fc.oneof(
  fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'PRI', 'get'),
  fc.stringMatching(/^[A-Z!#$%&'*+.^_`|~-]{1,12}$/),
);
const path = fc.oneof(
  fc.constantFrom(
    '/auth',
    '/shard',
    '/healthz',
    '/readyz',
    '/auth?x=1',
    '/auth/../shard',
    '//auth',
    '*',
    'http://evil/auth',
    '/%00',
    '/auth#f',
    '/a'.repeat(3000),
  ),
  fc.webPath(),
  fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
);
const request = fc.oneof(
  fc.record({
    method,
    path,
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
    body: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
  }),
  // Well-formed requests with one identity of any text: these get placed and stored.
  fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'POST'),
    path: fc.constantFrom('/auth', '/shard', '/auth?next=%2F'),
    headers: fc
      .tuple(
        fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 60 })
          .map((v): [string, Buffer] => ['REMOTE_USER', Buffer.from(v, 'utf8')]),
        fc.constantFrom<Array<[string, Buffer]>>(
          [],
          [['X-Shard-Kind', Buffer.from('lab')]],
          [['Cookie', Buffer.from('hub=hub-2.forged; other=1')]],
          [
            ['X-Shard-Kind', Buffer.from('hub')],
            ['Cookie', Buffer.from('hub=hub-0')],
          ],
        ),
      )
      .map(([id, rest]) => [id, ...rest]),
    body: fc.constant(undefined),
  }),
);

function build(r: {
  method: string;
  path: string;
  headers: Array<[string, Buffer]>;
  body: string | undefined;
}): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`${r.method} ${r.path} HTTP/1.1\r\nHost: sharder\r\nConnection: close\r\n`, 'latin1'),
  ];
  for (const [k, v] of r.headers) parts.push(Buffer.from(`${k}: `, 'latin1'), v, Buffer.from('\r\n', 'latin1'));
  parts.push(Buffer.from('\r\n', 'latin1'));
  if (r.body !== undefined) parts.push(Buffer.from(r.body, 'utf8'));
  return Buffer.concat(parts);
}

test(`HTTP fuzz: ${RUNS} hostile requests, never a 5xx or an unanswered request, only names sent are stored`, async (t) => {
  const s = await startSharder(t, {
    kind_header: 'X-Shard-Kind',
    kinds: { hub: { buckets: bucketsRaw() }, lab: { buckets: bucketsRaw(2, 9100) } },
  });
  const sent = new Set<string>();
  let answered200 = 0;
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      // The field value is what HTTP defines it to be: without the optional white space around it.
      for (const [k, v] of r.headers)
        if (/^remote[-_]user$/i.test(k)) sent.add(v.toString('utf8').replace(/^[ \t]+|[ \t]+$/g, ''));
      const text = await exchange(s.sharder.port, build(r));
      const status = statusOf(text);
      assert.ok(
        status >= 100 && status < 500,
        `status ${status} for ${JSON.stringify(build(r).toString('latin1').slice(0, 300))}: ${text.slice(0, 300)}`,
      );
      if (status === 200 && r.path.startsWith('/auth')) answered200++;
    }),
    { seed: SEED, numRuns: RUNS },
  );
  // Whatever was stored is a name that was sent, byte for byte (as UTF-8).
  for (const kind of ['hub', 'lab']) {
    for (const a of await s.sharder.store.list(kind, { limit: 100_000 }))
      assert.ok(
        sent.has(a.name),
        `stored ${JSON.stringify(a.name)} (${Buffer.from(a.name).toString('hex')}), which was never sent; near: ${[
          ...sent,
        ]
          .filter((x) => x.slice(0, 2) === a.name.slice(0, 2))
          .map((x) => Buffer.from(x).toString('hex'))
          .join(' ')}`,
      );
  }
  assert.equal((await get(`${s.url}/auth`, { REMOTE_USER: 'after-the-fuzz' })).status, 200, 'still serving');
  t.diagnostic(`${RUNS} requests, ${answered200} placed, ${sent.size} identity values sent`);
});

test('smuggling: TE with CL, TE obfuscations, duplicate CL, and identity headers folded or doubled are refused', async (t) => {
  const s = await startSharder(t);
  const attempts = [
    'POST /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nTransfer-Encoding: chunked\r\nContent-Length: ' +
      '30\r\n\r\n0\r\n\r\nGET /auth HTTP/1.1\r\nREMOTE_USER: b\r\n\r\n',
    'POST /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nContent-Length: 1\r\nContent-Length: 40\r\n\r\nx',
    'POST /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
    'POST /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'GET /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\n mallory\r\n\r\n',
    'GET /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nREMOTE_USER: a\r\n\r\n',
    'GET /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nREMOTE-USER: a\r\n\r\n',
    'GET /auth HTTP/1.1\nHost: x\nREMOTE_USER: a\r\n\r\n',
  ];
  for (const a of attempts) {
    const text = await raw(s.sharder.port, a);
    assert.equal(statusOf(text), 400, `${JSON.stringify(a)} → ${text.slice(0, 120)}`);
    assert.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1, `one answer only for ${JSON.stringify(a)}`);
  }
  // The smuggled or second identity never reaches the store (Node may run the handler for
  // the first request before it finds the bad body framing: that one is the sent name "a").
  for (const name of ['b', 'mallory', 'a mallory'])
    assert.equal(await s.sharder.store.lookup('hub', name), undefined, name);
});

test('slowloris: a client that sends its headers a byte at a time is cut off by the header timeout; others are served meanwhile', async (t) => {
  const s = await startSharder(t);
  const sock = connect(s.sharder.port, '127.0.0.1');
  let got = '';
  sock.setEncoding('latin1').on('data', (d: string) => (got += d));
  sock.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => sock.on('close', () => resolve(Date.now())));
  const started = Date.now();
  sock.write('GET /auth HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  const drip = setInterval(() => sock.writable && sock.write('a'), 500);
  t.after(() => clearInterval(drip));
  assert.equal((await get(`${s.url}/auth`, { REMOTE_USER: 'meanwhile' })).status, 200);
  let guard: NodeJS.Timeout | undefined;
  const at = await Promise.race([closed, new Promise<number>((r) => (guard = setTimeout(() => r(-1), 30_000)))]);
  clearTimeout(guard);
  clearInterval(drip);
  assert.ok(at > 0, 'the slow client was never cut off');
  assert.ok(at - started >= 9000, `cut off after ${at - started} ms, before the 10 s header timeout`);
  assert.match(got, /^HTTP\/1\.1 408/);
  t.diagnostic(`slow client cut off after ${at - started} ms`);
});
