/**
 * Who may set the identity and the kind (src/http/trust.ts, identity.ts): the pure rules with
 * plain addresses, then the attacks on real sockets — a peer outside trusted_proxies that
 * resets its connection right after sending the identity, and a client naming the kind.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { isLoopback, isTrusted, sourceOf, trustedProxies } from '../../src/http/trust.js';
import { json, send } from '../helpers/client.js';
import { startHub } from '../helpers/hubs.js';
import { startSharder } from '../helpers/sharder.js';
import { until } from '../helpers/wait.js';

test('trust: an unknown peer address is never trusted, whatever the list holds', () => {
  const everything = trustedProxies(['0.0.0.0/0', '::/0']);
  assert.equal(isTrusted(everything, undefined), false);
  assert.equal(isTrusted(everything, ''), false);
  assert.equal(isTrusted(everything, 'not-an-address'), false);
  const loop = trustedProxies(['127.0.0.1/32', '::1/128']);
  assert.equal(isTrusted(loop, '127.0.0.1'), true);
  assert.equal(isTrusted(loop, '::ffff:127.0.0.1'), true);
  assert.equal(isTrusted(loop, '::1'), true);
  assert.equal(isTrusted(loop, '127.0.0.2'), false);
  assert.equal(isTrusted(loop, '::ffff:127.0.0.2'), false);
});

test('trust: failure sources — all of loopback is one, IPv6 by /64, unknown is one', () => {
  for (const a of ['127.0.0.1', '127.0.0.2', '127.255.0.9', '::1', '::ffff:127.0.0.3']) {
    assert.equal(sourceOf(a), 'loopback', a);
    assert.ok(isLoopback(a), a);
  }
  assert.equal(sourceOf('10.0.0.1'), '10.0.0.1');
  assert.equal(sourceOf('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(sourceOf('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  assert.equal(sourceOf('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(sourceOf(undefined), 'unknown');
  assert.equal(sourceOf('garbage'), 'unknown');
  assert.ok(
    !isLoopback(undefined) && !isLoopback('10.0.0.1') && !isLoopback('::ffff:10.0.0.1') && !isLoopback('127.0.0.256'),
  );
});

/**
 * Sends a request from `from` and resets the connection (RST, SO_LINGER 0) as soon as the bytes
 * are written, before the server can read its peer address.
 */
function sendAndReset(port: number, from: string, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => {});
    s.once('close', () => resolve());
    s.once('connect', () => s.write(bytes, () => s.resetAndDestroy()));
  });
}

const RESETS = 300;

test('trust: a peer outside trusted_proxies that resets its connection assigns nobody on /auth', async (t) => {
  const { sharder, url } = await startSharder(t, { identity: { trusted_proxies: ['127.0.0.1/32'] } });
  await Promise.all(
    Array.from({ length: RESETS }, (_, i) =>
      sendAndReset(sharder.port, '127.0.0.2', `GET /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: reset-${i}\r\n\r\n`),
    ),
  );
  await until(
    async () => (await new Promise<number>((r) => sharder.server.getConnections((_e, n) => r(n)))) === 0,
    5_000,
    'all reset connections gone',
  );
  // A trusted request after them: its answer means the store has taken every write before it.
  assert.equal((await send(`${url}/auth`, { headers: { REMOTE_USER: 'trusted' } })).status, 200);
  const stored = await Promise.all(Array.from({ length: RESETS }, (_, i) => sharder.store.lookup('hub', `reset-${i}`)));
  assert.deepEqual(
    stored.filter((b) => b !== undefined),
    [],
    'no name from the untrusted peer was stored',
  );
  const fresh = Object.values(sharder.assignments.recent().counts.hub ?? {}).reduce((a, b) => a + b, 0);
  assert.equal(fresh, 1, 'only the trusted request assigned anybody');
});

test('trust: in proxy mode a reset POST from outside trusted_proxies never reaches a hub', async (t) => {
  const hub = await startHub(t, 'hub-0');
  const { sharder } = await startSharder(t, {
    mode: 'proxy',
    identity: { trusted_proxies: ['127.0.0.1/32'] },
    kinds: { hub: { buckets: [{ name: 'hub-0', upstream: hub.url }] } },
  });
  const body = 'x'.repeat(64);
  await Promise.all(
    Array.from({ length: RESETS }, (_, i) =>
      sendAndReset(
        sharder.port,
        '127.0.0.2',
        `POST /echo HTTP/1.1\r\nHost: x\r\nREMOTE_USER: victim-${i}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ),
    ),
  );
  await until(
    async () => (await new Promise<number>((r) => sharder.server.getConnections((_e, n) => r(n)))) === 0,
    5_000,
    'all reset connections gone',
  );
  assert.equal(hub.counts.requests, 0, 'no request reached the hub');
  assert.equal(sharder.proxy!.stats.requests, 0);
});

test('trust: the kind is the default one unless kind_header is configured; a client cannot pick it', async (t) => {
  const [users, admins] = await Promise.all([startHub(t, 'hub-0'), startHub(t, 'admin-0')]);
  const kinds = {
    hub: { buckets: [{ name: 'hub-0', upstream: users.url }] },
    'admin-hub': { buckets: [{ name: 'admin-0', upstream: admins.url }] },
  };
  // The reviewer's attack: a trusted front that passes the client's X-Shard-Kind along.
  const off = await startSharder(t, { mode: 'proxy', kinds });
  const r = await send(`${off.url}/echo`, { headers: { REMOTE_USER: 'mallory', 'X-Shard-Kind': 'admin-hub' } });
  assert.equal(r.status, 200);
  assert.equal(admins.counts.requests, 0, 'the admin hub never sees mallory');
  assert.equal(await off.sharder.store.lookup('admin-hub', 'mallory'), undefined);
  assert.equal(await off.sharder.store.lookup('hub', 'mallory'), 'hub-0');
});

test('trust: a configured kind header is taken from trusted proxies only, once, and never forwarded to a hub', async (t) => {
  const [users, admins] = await Promise.all([startHub(t, 'hub-0'), startHub(t, 'admin-0')]);
  const kinds = {
    hub: { buckets: [{ name: 'hub-0', upstream: users.url }] },
    'admin-hub': { buckets: [{ name: 'admin-0', upstream: admins.url }] },
  };
  const on = await startSharder(t, {
    mode: 'proxy',
    kind_header: 'X-Shard-Kind',
    identity: { trusted_proxies: ['127.0.0.1/32'] },
    kinds,
  });
  // From outside trusted_proxies: refused whatever else the request carries.
  const untrusted = await send(`${on.url}/echo`, {
    headers: { 'X-Shard-Kind': 'admin-hub', REMOTE_USER: 'mallory' },
    localAddress: '127.0.0.2',
  });
  assert.equal(untrusted.status, 403);
  assert.equal(json(untrusted).code, 'SHARD_ERR_UNTRUSTED_PROXY');
  // Twice, under both spellings, or naming no configured kind: refused, not guessed at.
  for (const headers of [
    ['REMOTE_USER', 'alice', 'X-Shard-Kind', 'hub', 'X-Shard-Kind', 'admin-hub'],
    ['REMOTE_USER', 'alice', 'X-Shard-Kind', 'hub', 'X-Shard_Kind', 'admin-hub'],
  ]) {
    const a = await send(`${on.url}/echo`, { headers });
    assert.equal(a.status, 400, headers.join(' '));
  }
  assert.equal(
    json(await send(`${on.url}/echo`, { headers: { REMOTE_USER: 'alice', 'X-Shard-Kind': 'nope' } })).code,
    'SHARD_ERR_UNKNOWN_KIND',
  );
  assert.equal(admins.counts.requests + users.counts.requests, 0);
  // A trusted proxy names it: honoured, and the hub does not receive the routing header.
  const ok = await send(`${on.url}/echo`, { headers: { REMOTE_USER: 'operator', 'X-Shard-Kind': 'admin-hub' } });
  assert.equal(ok.status, 200);
  const seen = json<{ hub: string; headers: Record<string, string> }>(ok);
  assert.equal(seen.hub, 'admin-0');
  assert.equal(seen.headers['x-shard-kind'], undefined);
  assert.equal(await on.sharder.store.lookup('admin-hub', 'operator'), 'admin-0');
});
