import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { Sharder } from '../../src/process/sharder.js';
import { silentLogger } from '../../src/log.js';
import { get, raw, statusOf } from '../helpers/http.js';
import { startSharder, testConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const U = { REMOTE_USER: 'alice' };

test('/auth answers 200 with the bucket headers and the cookie, and the same bucket every time', async (t) => {
  const { url } = await startSharder(t);
  const r = await get(`${url}/auth`, U);
  assert.equal(r.status, 200);
  assert.equal(r.body, '');
  assert.equal(r.headers['x-shard-bucket'], 'hub-0');
  assert.equal(r.headers['x-shard-kind'], 'hub');
  assert.equal(r.headers['x-shard-upstream'], 'http://127.0.0.1:9000');
  assert.equal(r.headers['set-cookie'], 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax');
  for (let i = 0; i < 5; i++) assert.equal((await get(`${url}/auth`, U)).headers['x-shard-bucket'], 'hub-0');
  assert.equal((await get(`${url}/auth`, { REMOTE_USER: 'bob' })).headers['x-shard-bucket'], 'hub-1');
});

test('/auth: any method, the body is never read', async (t) => {
  const { url } = await startSharder(t);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const r = await request(`${url}/auth`, { method: method as 'POST', headers: U, body: 'x'.repeat(100_000) });
    assert.equal(r.statusCode, 200, method);
    await r.body.dump();
  }
  const head = await request(`${url}/auth`, { method: 'HEAD', headers: U });
  assert.equal(head.headers['x-shard-bucket'], 'hub-0');
});

test('cookie.secure adds Secure; cookie.name renames the cookie; no upstream means no X-Shard-Upstream', async (t) => {
  const { url } = await startSharder(t, {
    cookie: { name: 'shard', secure: true },
    kinds: { hub: { buckets: [{ name: 'only' }] } },
  });
  const r = await get(`${url}/auth`, U);
  assert.equal(r.headers['set-cookie'], 'shard=only; Path=/; HttpOnly; SameSite=Lax; Secure');
  assert.equal(r.headers['x-shard-upstream'], undefined);
});

test('401 without identity, 403 from an untrusted address, 400 for an unknown kind', async (t) => {
  const { url } = await startSharder(t, {
    kind_header: 'X-Shard-Kind',
    kinds: { hub: { buckets: [{ name: 'a' }] }, home: { buckets: [{ name: 'fs-1' }] } },
  });
  const none = await get(`${url}/auth`);
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.body).code, 'SHARD_ERR_NO_IDENTITY');
  const unknown = await get(`${url}/auth`, { ...U, 'X-Shard-Kind': 'nope' });
  assert.equal(unknown.status, 400);
  assert.equal(JSON.parse(unknown.body).code, 'SHARD_ERR_UNKNOWN_KIND');
  const home = await get(`${url}/auth`, { ...U, 'X-Shard-Kind': 'home' });
  assert.equal(home.headers['x-shard-bucket'], 'fs-1');
  assert.equal(home.headers['x-shard-kind'], 'home');

  const untrusted = await startSharder(t, { identity: { trusted_proxies: ['10.0.0.0/8'] } });
  const r = await get(`${untrusted.url}/auth`, U);
  assert.equal(r.status, 403);
  assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_UNTRUSTED_PROXY');
  assert.equal((await get(`${untrusted.url}/auth`)).status, 401);
});

test('/shard answers JSON as the original, or redirects to the template', async (t) => {
  const { url } = await startSharder(t);
  const r = await get(`${url}/shard`, { REMOTE_USER: 'iana' });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { kind: 'hub', name: 'iana', bucket: 'hub-0' });
  assert.equal(r.headers['set-cookie'], 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax');

  const redirecting = await startSharder(t, {
    shard: { redirect: 'https://{bucket}.example.org/jupyter/hub?kind={kind}' },
  });
  const red = await get(`${redirecting.url}/shard?x=1`, { REMOTE_USER: 'iana' });
  assert.equal(red.status, 302);
  assert.equal(red.headers.location, 'https://hub-0.example.org/jupyter/hub?kind=hub');
  assert.equal(red.headers['set-cookie'], 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax');
});

test('/healthz, /readyz and 404', async (t) => {
  const { url, sharder } = await startSharder(t);
  assert.equal((await get(`${url}/healthz`)).status, 200);
  assert.equal((await get(`${url}/readyz`)).status, 200);
  const nf = await get(`${url}/nope`);
  assert.equal(nf.status, 404);
  assert.equal(JSON.parse(nf.body).code, 'SHARD_ERR_NOT_FOUND');
  await sharder.store.close();
  const ready = await get(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(JSON.parse(ready.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
});

test('known objects are answered from memory when the store is gone; new ones get a clear 503', async (t) => {
  const { url, sharder } = await startSharder(t);
  assert.equal((await get(`${url}/auth`, U)).status, 200);
  await sharder.store.close();
  const known = await get(`${url}/auth`, U);
  assert.equal(known.status, 200);
  assert.equal(known.headers['x-shard-bucket'], 'hub-0');
  const fresh = await get(`${url}/auth`, { REMOTE_USER: 'newcomer' });
  assert.equal(fresh.status, 503);
  assert.equal(JSON.parse(fresh.body).code, 'SHARD_ERR_STORE_UNAVAILABLE');
});

test('no active bucket: 503 with a code that says so', async (t) => {
  const { url } = await startSharder(t, { kinds: { hub: { buckets: [{ name: 'a', state: 'draining' }] } } });
  const r = await get(`${url}/auth`, U);
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body).code, 'SHARD_ERR_NO_BUCKET');
});

/** Raw requests: what undici refuses to send, a hostile client can. */
function req(headers: string): string {
  return `GET /shard HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`;
}
const body = (text: string): { code?: string; name?: string } => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));

test('bad identities get a clear 4xx, are never stored, and the server keeps serving', async (t) => {
  const { url, sharder } = await startSharder(t);
  const cases: Array<[string, string, number, string | undefined]> = [
    ['empty', 'REMOTE_USER: \r\n', 401, 'SHARD_ERR_NO_IDENTITY'],
    ['8 KiB', `REMOTE_USER: ${'a'.repeat(8192)}\r\n`, 400, 'SHARD_ERR_IDENTITY_TOO_LONG'],
    ['257 bytes', `REMOTE_USER: ${'a'.repeat(257)}\r\n`, 400, 'SHARD_ERR_IDENTITY_TOO_LONG'],
    ['invalid UTF-8', 'REMOTE_USER: \xff\xfe\r\n', 400, 'SHARD_ERR_IDENTITY_ENCODING'],
    ['overlong UTF-8', 'REMOTE_USER: \xc0\xaf\r\n', 400, 'SHARD_ERR_IDENTITY_ENCODING'],
    ['tab inside', 'REMOTE_USER: a\tb\r\n', 400, 'SHARD_ERR_IDENTITY_CHARACTERS'],
    ['C1 control', 'REMOTE_USER: a\xc2\x85b\r\n', 400, 'SHARD_ERR_IDENTITY_CHARACTERS'],
    ['NUL byte', 'REMOTE_USER: a\x00b\r\n', 400, undefined],
    ['bare CR', 'REMOTE_USER: a\rb\r\n', 400, undefined],
    ['repeated header', 'REMOTE_USER: alice\r\nREMOTE_USER: mallory\r\n', 400, 'SHARD_ERR_DUPLICATE_IDENTITY'],
    ['repeated, other case', 'REMOTE_USER: alice\r\nremote_user: mallory\r\n', 400, 'SHARD_ERR_DUPLICATE_IDENTITY'],
    ['other spelling beside it', 'REMOTE_USER: alice\r\nRemote-User: mallory\r\n', 400, 'SHARD_ERR_AMBIGUOUS_IDENTITY'],
    ['other spelling alone', 'Remote-User: mallory\r\n', 400, 'SHARD_ERR_AMBIGUOUS_IDENTITY'],
    ['header too large', `REMOTE_USER: ${'a'.repeat(20_000)}\r\n`, 431, undefined],
  ];
  for (const [name, headers, status, code] of cases) {
    const text = await raw(sharder.port, req(headers));
    assert.equal(statusOf(text), status, `${name}: ${text.slice(0, 200)}`);
    if (code) assert.equal(body(text).code, code, name);
  }
  const smuggle = await raw(
    sharder.port,
    'POST /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: a\r\nContent-Length: 4\r\nTransfer-Encoding: ' +
      'chunked\r\n\r\n0\r\n\r\n',
  );
  assert.equal(statusOf(smuggle), 400);
  assert.equal((await sharder.store.realCounts('hub')).size, 0, 'nothing was stored');
  assert.equal((await get(`${url}/auth`, U)).status, 200, 'still serving');
});

test('names are stored exactly as sent: SQL-looking, UTF-8, spaces, case', async (t) => {
  const { sharder } = await startSharder(t);
  const names = [
    "x'); DROP TABLE assignments; --",
    'élève@université.fr',
    '用户',
    'Jane Doe',
    'JANE',
    'jane',
    'a,b',
    'x'.repeat(256),
  ];
  for (const n of names) {
    const text = await raw(sharder.port, req(`REMOTE_USER: ${Buffer.from(n, 'utf8').toString('latin1')}\r\n`));
    assert.equal(statusOf(text), 200, n);
    assert.equal(body(Buffer.from(text, 'latin1').toString('utf8')).name, n);
    assert.notEqual(await sharder.store.lookup('hub', n), undefined, n);
  }
  const total = [...(await sharder.store.realCounts('hub')).values()].reduce((a, b) => a + b);
  assert.equal(total, names.length);
});

test('2,000 concurrent first requests for 1,000 names (each twice at once): one row per name, answers agree, counts within 1', async (t) => {
  const { url, sharder } = await startSharder(t);
  const agent = new Agent({ connections: 64 });
  t.after(() => agent.close());
  const names = Array.from({ length: 1000 }, (_, i) => `student-${i}`);
  const answers = await Promise.all(
    names.flatMap((n) =>
      [0, 1].map(async () => {
        const r = await request(`${url}/auth`, { headers: { REMOTE_USER: n }, dispatcher: agent });
        await r.body.dump();
        assert.equal(r.statusCode, 200);
        return r.headers['x-shard-bucket'] as string;
      }),
    ),
  );
  for (let i = 0; i < names.length; i++) assert.equal(answers[2 * i], answers[2 * i + 1], names[i]);
  for (let i = 0; i < names.length; i++) assert.equal(await sharder.store.lookup('hub', names[i]!), answers[2 * i]);
  const real = await sharder.store.realCounts('hub');
  const counts = [...real.values()];
  assert.equal(
    counts.reduce((a, b) => a + b),
    1000,
    'one row per name',
  );
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts.join(',')}`);
  assert.deepEqual(await sharder.store.counts('hub'), real, 'kept counts equal COUNT(*)');
});

test('assignments survive a restart of the server', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  const first = await Sharder.start(config, { log: silentLogger() });
  const before = await Promise.all(
    ['a', 'b', 'c', 'd'].map(
      async (n) => (await get(`${first.url}/auth`, { REMOTE_USER: n })).headers['x-shard-bucket'],
    ),
  );
  await first.stop();
  const second = await Sharder.start(config, { log: silentLogger() });
  t.after(() => second.stop());
  const after = await Promise.all(
    ['a', 'b', 'c', 'd'].map(
      async (n) => (await get(`${second.url}/auth`, { REMOTE_USER: n })).headers['x-shard-bucket'],
    ),
  );
  assert.deepEqual(after, before);
  assert.deepEqual(before, ['hub-0', 'hub-1', 'hub-2', 'hub-0']);
});

test('reload: a bucket added takes new objects, a drained one gets none, known objects stay', async (t) => {
  const dir = tempDir(t);
  const { url, sharder } = await startSharder(t, {}, dir);
  for (const n of ['a', 'b', 'c']) await get(`${url}/auth`, { REMOTE_USER: n });
  sharder.reload(
    testConfig(dir, {
      kinds: {
        hub: {
          buckets: [
            { name: 'hub-0', state: 'draining' },
            { name: 'hub-1' },
            { name: 'hub-2' },
            { name: 'hub-3', upstream: 'http://127.0.0.1:9003' },
          ],
        },
      },
    }),
  );
  assert.equal(
    (await get(`${url}/auth`, { REMOTE_USER: 'a' })).headers['x-shard-bucket'],
    'hub-0',
    'known objects stay on a draining bucket',
  );
  assert.equal(
    (await get(`${url}/auth`, { REMOTE_USER: 'a' })).headers['x-shard-upstream'],
    undefined,
    'the upstream follows the config',
  );
  const fresh = await get(`${url}/auth`, { REMOTE_USER: 'd' });
  assert.equal(fresh.headers['x-shard-bucket'], 'hub-3');
  assert.equal(fresh.headers['x-shard-upstream'], 'http://127.0.0.1:9003');
  sharder.reload(
    testConfig(dir, { kinds: { hub: { buckets: [{ name: 'hub-1' }, { name: 'hub-2' }, { name: 'hub-3' }] } } }),
  );
  const gone = await get(`${url}/auth`, { REMOTE_USER: 'a' });
  assert.equal(gone.status, 503);
  assert.equal(JSON.parse(gone.body).code, 'SHARD_ERR_UNKNOWN_BUCKET');
});
