/**
 * Proxy mode against real test hubs on real sockets: methods and bodies, streaming both ways,
 * server-sent events, websockets, hub failures and timeouts, client aborts, the spread of 300
 * users, and attempts to choose one's hub or identity.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { RawConfig } from '../../src/config/types.js';
import { closeWs, json, openWs, roundTrip, send } from '../helpers/client.js';
import { startHub, type Seen, type TestHub } from '../helpers/hubs.js';
import { startSharder, testConfig, type Running } from '../helpers/sharder.js';
import { until } from '../helpers/wait.js';
import type { HasAfter } from '../helpers/context.js';

const ID = { REMOTE_USER: 'alice' };

async function hubs(t: HasAfter, n = 3): Promise<TestHub[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startHub(t, `hub-${i}`)));
}

function bucketsFor(list: ReadonlyArray<{ name: string; url: string | null }>): RawConfig {
  return { hub: { buckets: list.map((h) => (h.url === null ? { name: h.name } : { name: h.name, upstream: h.url })) } };
}

async function proxyTo(
  t: HasAfter,
  list: ReadonlyArray<{ name: string; url: string | null }>,
  over: RawConfig = {},
): Promise<Running> {
  return startSharder(t, { mode: 'proxy', kinds: bucketsFor(list), ...over });
}

const cookieOf = (headers: IncomingMessage['headers']): string[] => headers['set-cookie'] ?? [];

test("proxy: every method reaches the user's hub with its body; the hub cookie is set", async (t) => {
  const hs = await hubs(t);
  const { url } = await proxyTo(t, hs);
  const body = JSON.stringify({ hello: 'world', n: [1, 2, 3] });
  const sha = createHash('sha256').update(body).digest('hex');
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const withBody = method !== 'GET';
    const r = await send(`${url}/echo?x=1&y=%2F`, {
      method,
      headers: { ...ID, 'Content-Type': 'application/json' },
      body: withBody ? body : undefined,
    });
    assert.equal(r.status, 200, method);
    const seen = json<Seen>(r);
    assert.equal(seen.hub, 'hub-0');
    assert.equal(seen.method, method);
    assert.equal(seen.url, '/echo?x=1&y=%2F');
    assert.equal(seen.bytes, withBody ? Buffer.byteLength(body) : 0, method);
    if (withBody) assert.equal(seen.sha256, sha, method);
    assert.deepEqual(cookieOf(r.headers), ['hub=hub-0; Path=/; HttpOnly; SameSite=Lax']);
  }
  const head = await send(`${url}/echo`, { method: 'HEAD', headers: ID });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
});

test('proxy: a chunked body of unknown length is streamed through (POST and DELETE)', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs);
  for (const method of ['POST', 'DELETE']) {
    const parts = ['one,', 'two,', 'three'];
    const r = await send(`${url}/echo`, {
      method,
      headers: { ...ID, 'Transfer-Encoding': 'chunked' },
      body: Readable.from(parts.map((p) => Buffer.from(p))),
    });
    assert.equal(r.status, 200, method);
    const seen = json<Seen>(r);
    assert.equal(seen.headers['transfer-encoding'], 'chunked', method);
    assert.equal(seen.bytes, parts.join('').length, method);
  }
});

test('proxy: a chunked DELETE cannot smuggle a second request (with another identity) to the hub', async (t) => {
  const [hub] = await hubs(t, 1);
  const { url } = await proxyTo(t, [hub!]);
  const smuggled = 'GET /echo HTTP/1.1\r\nHost: x\r\nREMOTE_USER: admin\r\nContent-Length: 0\r\n\r\n';
  for (const headers of [
    { 'Transfer-Encoding': 'chunked' },
    { 'Transfer-Encoding': 'chunked', Connection: 'keep-alive, Transfer-Encoding' },
  ]) {
    const before = hub!.counts.requests;
    const r = await send(`${url}/echo`, {
      method: 'DELETE',
      headers: { ...ID, ...headers },
      body: Readable.from([Buffer.from(smuggled)]),
    });
    assert.equal(r.status, 200);
    const seen = json<Seen>(r);
    assert.equal(seen.bytes, smuggled.length, 'the body reached the hub as a body');
    assert.equal(seen.headers.remote_user, 'alice');
    // A smuggled request would reach the hub before the next one on the proxy's connection.
    assert.equal(json<Seen>(await send(`${url}/echo?next`, { headers: ID })).url, '/echo?next');
    assert.equal(hub!.counts.requests, before + 2, 'and nothing else did');
  }
});

test('proxy: the request target is passed on byte for byte', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs);
  for (const path of ['/a/../b', '/x//a/%2e%2e/b?q=%20&q=2', '/user/%F0%9F%98%80/x;y=1', '/api/contents/a%2Fb']) {
    const r = await send(`${url}${path}`, { headers: ID });
    assert.equal(r.status, 200);
    assert.equal(json(r).url, path);
  }
});

test('proxy: forwarding headers, Host kept, identity forwarded, hop-by-hop headers dropped both ways', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs);
  const port = new URL(url).port;
  const r = await send(`${url}/echo`, {
    headers: {
      ...ID,
      Host: 'hub.example.org',
      Connection: 'keep-alive, X-Secret',
      'X-Secret': 'only for the sharder',
      'Keep-Alive': 'timeout=100',
      TE: 'trailers',
      'Proxy-Authorization': 'Basic c2VjcmV0',
      'X-Forwarded-For': '203.0.113.7',
      'X-Forwarded-Proto': 'https',
      'X-Custom': 'kept',
    },
  });
  const seen = json<Seen>(r);
  assert.equal(seen.headers.host, 'hub.example.org');
  assert.equal(seen.headers.remote_user, 'alice');
  assert.equal(seen.headers['x-custom'], 'kept');
  // From a trusted proxy (loopback by default): appended to, not replaced.
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-forwarded-host'], 'hub.example.org');
  for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(seen.headers[h], undefined, h);
  assert.notEqual(port, '');

  const c = await send(`${url}/cookies`, { headers: ID });
  assert.equal(c.status, 200);
  // The hub's cookies first, ours appended; the hub's hop-by-hop headers are not passed on.
  assert.deepEqual(cookieOf(c.headers), ['a=1; Path=/', 'b=2; Path=/', 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax']);
  assert.equal(c.headers['x-hop'], undefined);
  assert.notEqual(c.headers['keep-alive'], 'timeout=5'); // the sharder's own, if any
});

test('proxy: proxy.forward_identity false keeps the identity from the hubs', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs, { proxy: { forward_identity: false } });
  const seen = json<Seen>(await send(`${url}/echo`, { headers: ID }));
  assert.equal(seen.hub, 'hub-0');
  assert.equal(seen.headers.remote_user, undefined);
});

test('proxy: 300 users are spread 100/100/100 and each stays on their hub', async (t) => {
  const hs = await hubs(t);
  const { url } = await proxyTo(t, hs);
  const users = Array.from({ length: 300 }, (_, i) => `user-${i}`);
  const first = new Map<string, string>();
  for (let i = 0; i < users.length; i += 30) {
    await Promise.all(
      users.slice(i, i + 30).map(async (u) => {
        const r = await send(`${url}/echo`, { headers: { REMOTE_USER: u } });
        assert.equal(r.status, 200);
        first.set(u, json<Seen>(r).hub);
        assert.deepEqual(cookieOf(r.headers), [`hub=${json<Seen>(r).hub}; Path=/; HttpOnly; SameSite=Lax`]);
      }),
    );
  }
  const counts: Record<string, number> = {};
  for (const h of first.values()) counts[h] = (counts[h] ?? 0) + 1;
  assert.deepEqual(counts, { 'hub-0': 100, 'hub-1': 100, 'hub-2': 100 });
  for (const u of users.slice(0, 30))
    assert.equal(json<Seen>(await send(`${url}/echo`, { headers: { REMOTE_USER: u } })).hub, first.get(u));
  assert.equal(
    hs.reduce((a, h) => a + h.counts.requests, 0),
    330,
  );
});

test('proxy: server-sent events are passed on as they are written, not buffered', async (t) => {
  const [hub] = await hubs(t, 1);
  const { url } = await proxyTo(t, [hub!]);
  const req = httpRequest(`${url}/sse`, { headers: { ...ID, Accept: 'text/event-stream' } });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.headers['content-type'], 'text/event-stream');
  res.setEncoding('utf8');
  const [first] = (await once(res, 'data')) as [string];
  // The hub has not ended the stream yet: it waits for this release.
  assert.equal(first, 'data: first\n\n');
  hub!.releaseSse();
  let rest = '';
  for await (const d of res) rest += d as string;
  assert.equal(rest, 'data: second\n\n');
});

test(
  'proxy: a 1 GiB upload streams through and arrives whole (byte count and SHA-256)',
  { timeout: 180_000 },
  async (t) => {
    const [hub] = await hubs(t, 1);
    const { url } = await proxyTo(t, [hub!]);
    const total = 1024 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
    const hash = createHash('sha256');
    let sent = 0;
    // Generated as it is sent: nothing of this size exists anywhere, in memory or on disk.
    const body = new Readable({
      read() {
        if (sent >= total) return void this.push(null);
        const c = Buffer.from(chunk);
        c.writeUInt32LE(sent / chunk.length, 0);
        sent += c.length;
        hash.update(c);
        this.push(c);
      },
    });
    const before = process.memoryUsage().rss;
    const r = await send(`${url}/echo`, {
      method: 'PUT',
      headers: { ...ID, 'Content-Type': 'application/octet-stream' },
      body,
    });
    assert.equal(r.status, 200);
    const seen = json<Seen>(r);
    assert.equal(seen.bytes, total);
    assert.equal(seen.sha256, hash.digest('hex'));
    // Not buffered: the process did not grow by anything near the body's size.
    assert.ok(
      process.memoryUsage().rss - before < 256 * 1024 * 1024,
      `rss grew by ${process.memoryUsage().rss - before} bytes`,
    );
  },
);

test('proxy: a 256 MiB download streams through whole', { timeout: 120_000 }, async (t) => {
  const [hub] = await hubs(t, 1);
  const { url } = await proxyTo(t, [hub!]);
  const total = 256 * 1024 * 1024;
  const req = httpRequest(`${url}/download?bytes=${total}`, { headers: ID });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-length'], String(total));
  let n = 0;
  for await (const c of res) n += (c as Buffer).length;
  assert.equal(n, total);
});

test("proxy: websockets reach the user's hub and echo text and binary", async (t) => {
  const hs = await hubs(t);
  const { url } = await proxyTo(t, hs);
  const wsUrl = url.replace('http:', 'ws:');
  // bob is the first user, so he lands on hub-0; carol on hub-1.
  await send(`${url}/echo`, { headers: { REMOTE_USER: 'bob' } });
  const ws = await openWs(`${wsUrl}/user/bob/api/kernels/1/channels?session_id=x`, { REMOTE_USER: 'carol' });
  t.after(() => closeWs(ws));
  const who = JSON.parse((await roundTrip(ws, 'whoami')).data.toString()) as {
    hub: string;
    headers: Record<string, string>;
  };
  assert.equal(who.hub, 'hub-1');
  assert.equal(who.headers.remote_user, 'carol');
  assert.equal(who.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(who.headers['x-forwarded-proto'], 'http');
  for (let i = 0; i < 50; i++) assert.equal((await roundTrip(ws, `message ${i}`)).data.toString(), `message ${i}`);
  const big = Buffer.alloc(1024 * 1024, 3);
  const echoed = await roundTrip(ws, big);
  assert.equal(echoed.binary, true);
  assert.ok(echoed.data.equals(big));
});

test('proxy: websockets without identity or from an untrusted peer are refused before the hub', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs, { identity: { trusted_proxies: ['127.0.0.1/32'] } });
  const wsUrl = url.replace('http:', 'ws:');
  await assert.rejects(openWs(`${wsUrl}/ws`), { status: 401 });
  await assert.rejects(openWs(`${wsUrl}/ws`, { REMOTE_USER: 'mallory' }, '127.0.0.2'), { status: 403 });
  await assert.rejects(openWs(`${wsUrl}/_sharder/healthz`, ID), { status: 404 });
  assert.equal(hs[0]!.counts.websockets, 0);
});

test('proxy: an idle websocket is closed after proxy.websocket_idle_timeout_ms; traffic keeps it open', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs, { proxy: { websocket_idle_timeout_ms: 400 } });
  const ws = await openWs(`${url.replace('http:', 'ws:')}/ws`, ID);
  t.after(() => closeWs(ws));
  const closed = once(ws, 'close');
  const t0 = Date.now();
  // Traffic every 150 ms for 900 ms: longer than the timeout, never idle that long.
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 150));
    assert.equal((await roundTrip(ws, `keep ${i}`)).data.toString(), `keep ${i}`);
  }
  await closed;
  assert.ok(Date.now() - t0 >= 900 + 350, 'closed only after going idle');
});

test('proxy: a graceful stop ends open websockets after the grace period', async (t) => {
  const hs = await hubs(t, 1);
  const { url, sharder } = await proxyTo(t, hs);
  const ws = await openWs(`${url.replace('http:', 'ws:')}/ws`, ID);
  assert.equal(sharder.proxy!.stats.websocketsOpen, 1);
  const closed = once(ws, 'close');
  const t0 = Date.now();
  await sharder.stop(200);
  await closed;
  assert.ok(Date.now() - t0 < 5_000);
  await until(() => sharder.proxy!.stats.websocketsOpen === 0, 5_000);
});

test('proxy: Expect: 100-continue is answered by the sharder, and the body still reaches the hub', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs);
  const req = httpRequest(`${url}/echo`, {
    method: 'POST',
    headers: { ...ID, Expect: '100-continue', 'Content-Length': '5' },
  });
  req.on('continue', () => req.end('hello'));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let text = '';
  for await (const d of res) text += d;
  const seen = JSON.parse(text) as Seen;
  assert.equal(seen.bytes, 5);
  assert.equal(seen.headers.expect, undefined);
});

test('proxy: a hub that is down gives 502 naming the hub, as a page or as JSON, counted', async (t) => {
  // Port 1 (tcpmux) has no listener: connections are refused at once.
  const { url, sharder } = await proxyTo(t, [{ name: 'hub-0', url: 'http://127.0.0.1:1' }]);
  const page = await send(`${url}/hub/home`, { headers: { ...ID, Accept: 'text/html,application/xhtml+xml,*/*' } });
  assert.equal(page.status, 502);
  assert.match(page.headers['content-type']!, /^text\/html/);
  assert.match(page.text, /hub-0/);
  assert.match(page.text, /SHARD_ERR_UPSTREAM_DOWN/);
  assert.deepEqual(cookieOf(page.headers), ['hub=hub-0; Path=/; HttpOnly; SameSite=Lax']);
  const api = await send(`${url}/hub/api/user`, { headers: { ...ID, Accept: 'application/json' } });
  assert.equal(api.status, 502);
  assert.deepEqual(
    { ...json<Record<string, unknown>>(api), message: undefined },
    { code: 'SHARD_ERR_UPSTREAM_DOWN', bucket: 'hub-0', message: undefined },
  );
  assert.match(json<{ message: string }>(api).message, /hub "hub-0" is not answering \(connection refused\)/);
  await assert.rejects(openWs(`${url.replace('http:', 'ws:')}/ws`, ID), (err: { status: number; body: string }) => {
    assert.equal(err.status, 502);
    assert.equal(JSON.parse(err.body).code, 'SHARD_ERR_UPSTREAM_DOWN');
    return true;
  });
  assert.equal(sharder.proxy!.stats.errors.SHARD_ERR_UPSTREAM_DOWN, 3);
  // The process is still serving.
  assert.equal((await send(`${url}/_sharder/healthz`)).status, 200);
});

test("proxy: a hub dying in the middle of a response cuts the client's response too", async (t) => {
  const [hub] = await hubs(t, 1);
  const { url, sharder } = await proxyTo(t, [hub!]);
  const req = httpRequest(`${url}/die-midway`, { headers: ID });
  req.on('error', () => {});
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  let got = '';
  res.setEncoding('utf8').on('data', (d: string) => (got += d));
  res.on('error', () => {});
  // http-proxy-3 alone leaves this response open forever; here it is closed, unfinished.
  await new Promise((resolve) => res.once('close', resolve));
  assert.equal(got, 'partial');
  assert.equal(res.complete, false);
  assert.equal(sharder.proxy!.stats.errors.SHARD_ERR_UPSTREAM_DOWN, 1);
});

test('proxy: a bucket without upstream gives 503 naming the hub', async (t) => {
  const { url, sharder } = await proxyTo(t, [{ name: 'hub-0', url: null }]);
  const r = await send(`${url}/x`, { headers: { ...ID, Accept: 'application/json' } });
  assert.equal(r.status, 503);
  assert.equal(json(r).code, 'SHARD_ERR_NO_UPSTREAM');
  assert.equal(json(r).bucket, 'hub-0');
  assert.equal(sharder.proxy!.stats.errors.SHARD_ERR_NO_UPSTREAM, 1);
});

test('proxy: a hub that goes silent gives 504 after proxy.idle_timeout_ms, and sees the request end', async (t) => {
  const [hub] = await hubs(t, 1);
  const { url, sharder } = await proxyTo(t, [hub!], { proxy: { idle_timeout_ms: 300 } });
  const r = await send(`${url}/slow`, { headers: { ...ID, Accept: 'application/json' } });
  assert.equal(r.status, 504);
  assert.equal(json(r).code, 'SHARD_ERR_UPSTREAM_TIMEOUT');
  assert.match(json<{ message: string }>(r).message, /hub "hub-0" sent nothing for 0.3 s/);
  assert.equal(sharder.proxy!.stats.errors.SHARD_ERR_UPSTREAM_TIMEOUT, 1);
  await until(() => hub!.aborted.includes('/slow'), 5_000);
});

/**
 * A hub in a worker thread whose accept queue holds one connection and whose event loop is
 * blocked for `blockMs` (forever when 0): the kernel drops further SYNs, so connecting hangs
 * (SYNs are retried after about a second) until it unblocks, then it answers "late hub".
 */
async function stalledHub(t: HasAfter, blockMs: number): Promise<number> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `
    const { parentPort, workerData: { flag, blockMs } } = require('node:worker_threads');
    const s = require('node:http').createServer((req, res) => res.end('late hub'));
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      parentPort.postMessage(s.address().port);
      setTimeout(() => {
        parentPort.postMessage('blocked');
        const end = blockMs > 0 ? Date.now() + blockMs : Infinity;
        while (Atomics.load(flag, 0) === 0 && Date.now() < end) Atomics.wait(flag, 0, 0, 20);
      }, 10);
    });`,
    { eval: true, workerData: { flag, blockMs } },
  );
  const port = (await once(worker, 'message'))[0] as number;
  const blocked = once(worker, 'message');
  t.after(async () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await worker.terminate();
  });
  await blocked;
  // Fill the accept queue.
  const fillers = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => {});
          s.once('connect', () => resolve(s));
          setTimeout(() => resolve(s), 200);
        }),
    ),
  );
  t.after(() => fillers.forEach((s) => s.destroy()));
  return port;
}

test('proxy: a hub that does not accept connections gives 504 after proxy.connect_timeout_ms', async (t) => {
  const port = await stalledHub(t, 0);
  const { url } = await proxyTo(t, [{ name: 'hub-0', url: `http://127.0.0.1:${port}` }], {
    proxy: { connect_timeout_ms: 300 },
  });
  const r = await send(`${url}/x`, { headers: { ...ID, Accept: 'application/json' } });
  assert.equal(r.status, 504);
  assert.match(json<{ message: string }>(r).message, /hub "hub-0" did not accept a connection within 0.3 s/);
});

test("proxy: a slow connect is bounded by connect_timeout_ms alone, not by the pool's keep_alive_ms", async (t) => {
  const port = await stalledHub(t, 400);
  const { url } = await proxyTo(t, [{ name: 'hub-0', url: `http://127.0.0.1:${port}` }], {
    proxy: { connect_timeout_ms: 10_000, keep_alive_ms: 100 },
  });
  const r = await send(`${url}/x`, { headers: { ...ID, Accept: 'application/json' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, 'late hub');
});

test('proxy: a client that goes away aborts the request to the hub (download and upload)', async (t) => {
  const [hub] = await hubs(t, 1);
  const { url, sharder } = await proxyTo(t, [hub!]);
  const arrived = hub!.arrival('/slow');
  const req = httpRequest(`${url}/slow`, { headers: ID });
  req.on('error', () => {});
  req.end();
  await arrived;
  req.destroy();
  await until(() => hub!.aborted.includes('/slow'), 5_000);

  const arrivedUpload = hub!.arrival('/upload-slow');
  const up = httpRequest(`${url}/upload-slow`, { method: 'POST', headers: { ...ID, 'Content-Length': '1000000' } });
  up.on('error', () => {});
  up.write(Buffer.alloc(1000));
  await arrivedUpload;
  up.destroy();
  await until(() => hub!.aborted.includes('/upload-slow'), 5_000);
  await until(() => sharder.proxy!.stats.clientAborts >= 2, 5_000);
});

test('proxy: spoofing: an untrusted peer cannot name itself, a hub cookie cannot choose the hub', async (t) => {
  const hs = await hubs(t);
  const { url } = await proxyTo(t, hs, { identity: { trusted_proxies: ['127.0.0.1/32'] } });
  // From 127.0.0.2, outside the trusted range: the identity header is refused, never forwarded.
  const untrusted = await send(`${url}/echo`, { headers: { REMOTE_USER: 'admin' }, localAddress: '127.0.0.2' });
  assert.equal(untrusted.status, 403);
  assert.equal(json(untrusted).code, 'SHARD_ERR_UNTRUSTED_PROXY');
  const noId = await send(`${url}/echo`, { localAddress: '127.0.0.2' });
  assert.equal(noId.status, 401);
  assert.equal(
    hs.reduce((a, h) => a + h.counts.requests, 0),
    0,
  );

  // A trusted request: alice lands on hub-0 whatever cookie she sends.
  const r = await send(`${url}/echo`, { headers: { ...ID, Cookie: 'hub=hub-2; other=1' } });
  assert.equal(json<Seen>(r).hub, 'hub-0');
  assert.deepEqual(cookieOf(r.headers), ['hub=hub-0; Path=/; HttpOnly; SameSite=Lax']);
  // The other spelling of the header, or two copies, are refused rather than guessed at.
  assert.equal((await send(`${url}/echo`, { headers: ['REMOTE_USER', 'alice', 'Remote-User', 'admin'] })).status, 400);
  assert.equal((await send(`${url}/echo`, { headers: ['REMOTE_USER', 'alice', 'REMOTE_USER', 'admin'] })).status, 400);
  assert.equal(
    hs.reduce((a, h) => a + h.counts.requests, 0),
    1,
  );
  // No kind header is configured: a client's X-Shard-Kind chooses nothing (test/integration/trust.test.ts).
  assert.equal(json<Seen>(await send(`${url}/echo`, { headers: { 'X-Shard-Kind': 'nope', ...ID } })).hub, 'hub-0');

  // Forwarding headers from an untrusted peer are replaced (it cannot reach a hub anyway without
  // identity, so check through the kind of peer that can: a trusted one appends).
  const seen = json<Seen>(await send(`${url}/echo`, { headers: { ...ID, 'X-Forwarded-For': '10.0.0.1' } }));
  assert.equal(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
});

test('proxy: no identity gives 401, or a redirect to proxy.login_url for pages', async (t) => {
  const hs = await hubs(t, 1);
  const plain = await proxyTo(t, hs);
  const r = await send(`${plain.url}/hub/home`);
  assert.equal(r.status, 401);
  assert.equal(json(r).code, 'SHARD_ERR_NO_IDENTITY');

  const login = await proxyTo(t, hs, { proxy: { login_url: 'https://login.example.org/start?next={next}' } });
  const page = await send(`${login.url}/hub/home?a=1`, { headers: { Accept: 'text/html' } });
  assert.equal(page.status, 302);
  assert.equal(page.headers.location, 'https://login.example.org/start?next=%2Fhub%2Fhome%3Fa%3D1');
  assert.equal((await send(`${login.url}/hub/api/user`, { headers: { Accept: 'application/json' } })).status, 401);
  assert.equal((await send(`${login.url}/hub/api/user`, { method: 'POST', body: 'x' })).status, 401);
  assert.equal(hs[0]!.counts.requests, 0);
  assert.equal(login.sharder.proxy!.stats.loginRedirects, 1);
});

test('proxy: the sharder keeps /_sharder/ for itself; everything else goes to the hub', async (t) => {
  const hs = await hubs(t, 1);
  const { url } = await proxyTo(t, hs);
  assert.deepEqual(json(await send(`${url}/_sharder/healthz`)), { status: 'ok' });
  assert.equal((await send(`${url}/_sharder/readyz`)).status, 200);
  const shard = await send(`${url}/_sharder/shard`, { headers: ID });
  assert.deepEqual(json(shard), { kind: 'hub', name: 'alice', bucket: 'hub-0' });
  assert.equal((await send(`${url}/_sharder/nothing`)).status, 404);
  // The hub's own /healthz is the hub's.
  const { hub, path, url: seenUrl } = json<Seen>(await send(`${url}/healthz`, { headers: ID }));
  assert.deepEqual({ hub, path, url: seenUrl }, { hub: 'hub-0', path: '/healthz', url: '/healthz' });
});

test('proxy: a pooled connection the hub has closed is retried for GET, not for POST', async (t) => {
  // A hub that answers the first request on a connection with keep-alive and then drops the
  // connection when a second request arrives on it, as a hub does whose idle timeout just fired.
  const served = new WeakMap<object, number>();
  const flaky = createServer((req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n > 1) return void req.socket.destroy();
    req.resume();
    req.on('end', () => res.end('fresh'));
  });
  flaky.keepAliveTimeout = 60_000;
  flaky.listen(0, '127.0.0.1');
  await once(flaky, 'listening');
  t.after(() => {
    flaky.closeAllConnections();
    flaky.close();
  });
  const { url, sharder } = await proxyTo(t, [
    { name: 'hub-0', url: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}` },
  ]);
  assert.equal((await send(`${url}/a`, { headers: ID })).text, 'fresh');
  const again = await send(`${url}/b`, { headers: ID });
  assert.equal(again.status, 200);
  assert.equal(again.text, 'fresh');
  assert.equal(sharder.proxy!.stats.retries, 1);
  const post = await send(`${url}/c`, { method: 'POST', headers: { ...ID, Accept: 'application/json' }, body: 'data' });
  assert.equal(post.status, 502);
  assert.equal(sharder.proxy!.stats.retries, 1);
});

test('proxy: a reload moves a hub to a new upstream at once', async (t) => {
  const hs = await hubs(t, 2);
  const running = await proxyTo(t, [hs[0]!]);
  assert.equal(json<Seen>(await send(`${running.url}/echo`, { headers: ID })).hub, 'hub-0');
  running.sharder.reload(
    testConfig(running.dir, { mode: 'proxy', kinds: bucketsFor([{ name: 'hub-0', url: hs[1]!.url }]) }),
  );
  assert.equal(json<Seen>(await send(`${running.url}/echo`, { headers: ID })).hub, 'hub-1');
});
