/**
 * Safe moves: the old hub's JupyterHub API is asked about running servers before a move, a
 * delete or a migration, against a JupyterHub-API-shaped server on a real socket.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { opsFixture, seed, who } from '../helpers/ops.js';
import { running, startFakeHub } from '../helpers/fake-hub.js';

const TOKEN = 'hub-api-token-0123456789-secret';

function withHubApi(url: string, token = TOKEN, state = 'active') {
  return {
    kinds: {
      hub: {
        buckets: [
          { name: 'hub-0', upstream: 'http://127.0.0.1:9000', state, hub_api: { url, token } },
          { name: 'hub-1', upstream: 'http://127.0.0.1:9001' },
          { name: 'hub-2', upstream: 'http://127.0.0.1:9002' },
        ],
      },
    },
  };
}

test('a user with a running server is not moved, and nothing is written', async (t) => {
  const hub = await startFakeHub(t, TOKEN);
  const f = opsFixture(t, withHubApi(hub.url));
  await f.ops.assign({ name: 'busy user', bucket: 'hub-0', ...who });
  running(hub, 'busy user', '');
  await assert.rejects(f.ops.move({ name: 'busy user', to: 'hub-1', ...who }), (err: Error & { code: string }) => {
    assert.equal(err.code, 'SHARD_ERR_SERVER_RUNNING');
    assert.match(err.message, /running server on bucket "hub-0".*--stop-servers/);
    assert.ok(!err.message.includes(TOKEN));
    return true;
  });
  await assert.rejects(f.ops.delete({ name: 'busy user', ...who }), { code: 'SHARD_ERR_SERVER_RUNNING' });
  assert.equal(await f.store.lookup('hub', 'busy user'), 'hub-0');
  assert.equal((await f.ops.audit({ action: 'move' })).items.length, 0);
  assert.deepEqual(hub.requests.at(-1), {
    method: 'GET',
    path: '/hub/api/users/busy user',
    authorization: `token ${TOKEN}`,
  });
});

test('--stop-servers stops every server on the old hub, waits until stopped, then moves', async (t) => {
  const hub = await startFakeHub(t, TOKEN, { stopAfterLooks: 3 });
  const f = opsFixture(t, withHubApi(hub.url));
  await f.ops.assign({ name: 'alice', bucket: 'hub-0', ...who });
  running(hub, 'alice', '', 'gpu');
  const r = await f.ops.move({ name: 'alice', to: 'hub-2', ...who, stopServers: true });
  assert.deepEqual([r.from, r.to, r.changed, r.servers_stopped], ['hub-0', 'hub-2', true, true]);
  assert.equal(await f.store.lookup('hub', 'alice'), 'hub-2');
  const deletes = hub.requests.filter((q) => q.method === 'DELETE').map((q) => q.path);
  assert.deepEqual(deletes, ['/hub/api/users/alice/server', '/hub/api/users/alice/servers/gpu']);
  assert.equal(hub.users.get('alice')?.size, 0, 'both stopped before the move');
  assert.ok(hub.requests.filter((q) => q.method === 'GET').length >= 4, 'it looked until they were gone');
});

test('a server that does not stop in time is not moved', async (t) => {
  const hub = await startFakeHub(t, TOKEN);
  const f = opsFixture(t, withHubApi(hub.url));
  await f.ops.assign({ name: 'stuck', bucket: 'hub-0', ...who });
  hub.users.set('stuck', new Map([['', { stuck: true }]]));
  await assert.rejects(f.ops.move({ name: 'stuck', to: 'hub-1', ...who, stopServers: true, stopTimeoutMs: 150 }), {
    code: 'SHARD_ERR_SERVER_RUNNING',
    message: /did not stop within/,
  });
  assert.equal(await f.store.lookup('hub', 'stuck'), 'hub-0');
});

test('users the hub does not know, or without a running server, move; so do users of a hub without hub_api', async (t) => {
  const hub = await startFakeHub(t, TOKEN);
  const f = opsFixture(t, withHubApi(hub.url));
  await f.ops.assign({ name: 'unknown-to-hub', bucket: 'hub-0', ...who });
  await f.ops.assign({ name: 'idle', bucket: 'hub-0', ...who });
  hub.users.set('idle', new Map());
  assert.equal((await f.ops.move({ name: 'unknown-to-hub', to: 'hub-1', ...who })).changed, true);
  assert.equal((await f.ops.move({ name: 'idle', to: 'hub-1', ...who })).changed, true);
  const asked = hub.requests.length;
  assert.equal((await f.ops.move({ name: 'idle', to: 'hub-2', ...who })).changed, true, 'hub-1 has no hub_api');
  assert.equal(hub.requests.length, asked);
});

test('without the read:servers scope, `server` and `pending` still reveal a running server', async (t) => {
  const hub = await startFakeHub(t, TOKEN);
  hub.hideServers = true;
  const f = opsFixture(t, withHubApi(hub.url));
  await f.ops.assign({ name: 'bob', bucket: 'hub-0', ...who });
  running(hub, 'bob', '');
  await assert.rejects(f.ops.move({ name: 'bob', to: 'hub-1', ...who }), { code: 'SHARD_ERR_SERVER_RUNNING' });
});

test('a hub API that refuses the token, fails, or drops the connection blocks the move: nobody moves blind', async (t) => {
  const hub = await startFakeHub(t, TOKEN);
  const wrong = 'the-wrong-token-abcdefghijkl';
  const f = opsFixture(t, withHubApi(hub.url, wrong));
  await f.ops.assign({ name: 'carol', bucket: 'hub-0', ...who });
  await assert.rejects(f.ops.move({ name: 'carol', to: 'hub-1', ...who }), (err: Error & { code: string }) => {
    assert.equal(err.code, 'SHARD_ERR_HUB_API');
    assert.match(err.message, /refused the token \(403\).*scopes/);
    assert.ok(!err.message.includes(wrong));
    return true;
  });
  f.setConfig(withHubApi(hub.url));
  hub.failWith = 500;
  await assert.rejects(f.ops.move({ name: 'carol', to: 'hub-1', ...who }), {
    code: 'SHARD_ERR_HUB_API',
    message: /answered 500/,
  });

  const dropper = createServer((s) => s.destroy());
  dropper.listen(0, '127.0.0.1');
  await once(dropper, 'listening');
  t.after(() => dropper.close());
  f.setConfig(withHubApi(`http://127.0.0.1:${(dropper.address() as AddressInfo).port}`));
  await assert.rejects(f.ops.move({ name: 'carol', to: 'hub-1', ...who }), {
    code: 'SHARD_ERR_HUB_API',
    message: /did not answer/,
  });
  assert.equal(await f.store.lookup('hub', 'carol'), 'hub-0');
  // The operator who knows the hub is gone for good can say so.
  assert.equal((await f.ops.move({ name: 'carol', to: 'hub-1', ...who, skipHubCheck: true })).changed, true);
});

test('migrate skips users with running servers (reported), moves the rest; --stop-servers moves all', async (t) => {
  const hub = await startFakeHub(t, TOKEN, { stopAfterLooks: 1 });
  const f = opsFixture(t, withHubApi(hub.url, TOKEN, 'draining'));
  seed(f.store, 'hub', 'hub-0', 20);
  running(hub, 'u000003', '');
  running(hub, 'u000017', 'named');
  const r = await f.ops.migrate({ from: 'hub-0', batchSize: 8, ...who });
  assert.equal(r.moved, 18);
  assert.equal(r.remaining, 2);
  assert.deepEqual(
    r.skipped.map((s) => s.name),
    ['u000003', 'u000017'],
  );
  assert.match(r.skipped[0]!.reason, /running server/);
  assert.equal(await f.store.lookup('hub', 'u000003'), 'hub-0');
  const again = await f.ops.migrate({ from: 'hub-0', batchSize: 8, ...who, stopServers: true });
  assert.equal(again.moved, 2);
  assert.equal(again.servers_stopped, 2);
  assert.equal(again.remaining, 0);
  assert.equal((await f.ops.doctor()).ok, true);
  assert.equal(
    hub.requests.filter((q) => q.method === 'GET' && q.path.startsWith('/hub/api/users/u')).length >= 22,
    true,
  );
});
