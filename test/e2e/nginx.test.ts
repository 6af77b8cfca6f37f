/**
 * End-to-end: a real nginx running the shipped configuration (nginx/, copied to a temporary
 * prefix, bucket part rendered from the sharder's configuration), an in-process sharder, and
 * three test hubs on free ports. Every request goes nginx → auth_request → sharder → hub.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { startHub, whoami } from '../helpers/hubs.js';
import { nginxSkip, rawRequest, startAuthenticator, wsMessages } from '../helpers/nginx.js';
import { runCli, writeConfig, rawConfig as baseRawConfig } from '../helpers/sharder.js';
import { BULK_USERS, basic, cookieOf, hubOf, startStack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

const FRIENDLY = 'Your notebook server is temporarily unavailable';

/** The bucket the sharder stored for a user, read from its store (not through nginx). */
async function storedBucket(stack: Awaited<ReturnType<typeof startStack>>, user: string): Promise<string | undefined> {
  return stack.sharder.sharder.store.lookup('hub', user);
}

describe('nginx auth_request integration (real nginx)', { skip: nginxSkip, concurrency: 1 }, () => {
  test('each user reaches the hub the sharder chose, every time, and gets the hub cookie', async (t) => {
    const stack = await startStack(t);
    for (const user of ['alice', 'bob', 'u1', 'u2']) {
      for (let i = 0; i < 3; i++) {
        const r = await stack.as(user, `/user/${user}/lab?x=${i}`);
        assert.equal(r.status, 200, r.body);
        const bucket = await storedBucket(stack, user);
        assert.ok(bucket, `${user} has a stored assignment`);
        assert.equal(hubOf(r), bucket, `${user}, request ${i}`);
        assert.equal(cookieOf(r), `hub=${bucket}; Path=/; HttpOnly; SameSite=Lax`);
        const echo = JSON.parse(r.body);
        assert.equal(echo.url, `/user/${user}/lab?x=${i}`, 'URI and query reach the hub unchanged');
        assert.equal(echo.headers.remote_user, user, 'the hub gets the authenticated identity');
      }
    }
    // Four users over three empty hubs: emptiest bin puts the fourth back on hub-0.
    assert.deepEqual(await Promise.all(['alice', 'bob', 'u1', 'u2'].map((u) => storedBucket(stack, u))), [
      'hub-0',
      'hub-1',
      'hub-2',
      'hub-0',
    ]);
    assert.doesNotMatch(stack.nginx.errorLog(), /\[(crit|error|alert|emerg)\]/);
  });

  test('the hub sees the original Host, X-Forwarded-* and the client address', async (t) => {
    const stack = await startStack(t);
    const r = await stack.as('alice', '/hub/home', {
      host: 'jupyter.example.edu:8443',
      'x-forwarded-for': '203.0.113.9',
    });
    assert.equal(r.status, 200, r.body);
    const h = JSON.parse(r.body).headers;
    assert.equal(h.host, 'jupyter.example.edu:8443');
    assert.equal(h['x-forwarded-host'], 'jupyter.example.edu:8443');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(h['x-real-ip'], '127.0.0.1');
  });

  test('300 users end up 100/100/100 on three hubs', async (t) => {
    const stack = await startStack(t);
    const users = Array.from({ length: BULK_USERS }, (_, i) => `u${i}`);
    const seen = new Map<string, string>();
    // Concurrent batches, as browsers arrive: the sharder serialises first assignments.
    for (let i = 0; i < users.length; i += 30) {
      const batch = users.slice(i, i + 30);
      const replies = await Promise.all(batch.map((u) => stack.as(u)));
      replies.forEach((r, j) => {
        assert.equal(r.status, 200, r.body);
        assert.equal(cookieOf(r), `hub=${hubOf(r)}; Path=/; HttpOnly; SameSite=Lax`);
        seen.set(batch[j]!, hubOf(r)!);
      });
    }
    const perHub = new Map<string, number>();
    for (const h of seen.values()) perHub.set(h, (perHub.get(h) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries([...perHub].sort()), { 'hub-0': 100, 'hub-1': 100, 'hub-2': 100 });
    assert.deepEqual(
      stack.hubs.map((h) => h.counts.requests),
      [100, 100, 100],
    );
    // And again: everyone lands where they were put.
    const again = await Promise.all(users.slice(0, 60).map((u) => stack.as(u)));
    again.forEach((r, j) => assert.equal(hubOf(r), seen.get(users[j]!)));
  });

  test('a draining hub gets no new users, and keeps routing the ones it has', async (t) => {
    const stack = await startStack(t);
    const early = ['u0', 'u1', 'u2'];
    for (const u of early) assert.equal((await stack.as(u)).status, 200);
    assert.equal(await storedBucket(stack, 'u1'), 'hub-1');
    // Drain hub-1: sharder.yml changes, the nginx part does not (its users still need routing).
    const next = structuredClone(stack.rawConfig) as { kinds: { hub: { buckets: { state?: string }[] } } };
    next.kinds.hub.buckets[1]!.state = 'draining';
    stack.sharder.sharder.reload(loadConfigFrom(stack.sharder.dir, next));
    const before = stack.hubs[1]!.counts.requests;
    for (let i = 3; i < 63; i++) assert.notEqual(hubOf(await stack.as(`u${i}`)), 'hub-1', `u${i}`);
    assert.equal(stack.hubs[1]!.counts.requests, before, 'no request of a new user reached the draining hub');
    const r = await stack.as('u1');
    assert.equal(hubOf(r), 'hub-1', 'an existing user of the draining hub still reaches it');
  });

  test("a websocket opened through nginx reaches the user's hub and echoes", async (t) => {
    const stack = await startStack(t);
    await stack.as('alice');
    await stack.as('bob');
    const url = stack.nginx.url('/user/bob/api/kernels/k1/channels').replace('http:', 'ws:');
    const [who, ...echoes] = await wsMessages(url, { authorization: basic('bob') }, ['whoami', 'ping', 'print(1)']);
    assert.equal(whoami(who!), 'hub-1:bob');
    assert.deepEqual(echoes, ['ping', 'print(1)']);
    await assert.rejects(wsMessages(url, {}, ['x']), /refused: 401/);
  });

  test('no identity: 401 from nginx, and the sharder assigns nobody', async (t) => {
    const stack = await startStack(t);
    const none = await stack.request('/hub/');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="JupyterHub"/);
    assert.equal(cookieOf(none), undefined);
    const wrong = await stack.request('/hub/', { authorization: basic('alice', 'not-her-password') });
    assert.equal(wrong.status, 401);
    const stranger = await stack.request('/hub/', { authorization: basic('mallory', 'x') });
    assert.equal(stranger.status, 401);
    // auth_basic runs before auth_request: the sharder never heard of any of them.
    assert.deepEqual(Object.fromEntries(await stack.sharder.sharder.store.counts('hub')), {});
    assert.deepEqual(
      stack.hubs.map((h) => h.counts.requests),
      [0, 0, 0],
    );
  });

  test('the sharder stopped: the friendly error page, not a bare 500', async (t) => {
    const stack = await startStack(t);
    assert.equal((await stack.as('alice')).status, 200);
    await stack.sharder.sharder.stop(100);
    for (const method of ['GET', 'POST']) {
      const r = await stack.request('/hub/api/users', { authorization: basic('alice') }, method);
      assert.equal(r.status, 503, `${method}: ${r.body}`);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.ok(r.body.includes(FRIENDLY), r.body);
      assert.equal(r.headers['retry-after'], '30');
      assert.equal(cookieOf(r), undefined, 'no hub cookie without an answer from the sharder');
    }
  });

  test('the sharder failing (no active bucket: 503) shows the friendly page too', async (t) => {
    const stack = await startStack(t, {
      buckets: [0, 1, 2].map((i) => ({ name: `hub-${i}`, hub: i, state: 'draining' as const })),
    });
    const r = await stack.as('alice');
    assert.equal(r.status, 503);
    assert.ok(r.body.includes(FRIENDLY));
  });

  test('a hub that does not answer: the friendly page with 502', async (t) => {
    const stack = await startStack(t);
    assert.equal(hubOf(await stack.as('alice')), 'hub-0');
    stack.hubs[0]!.server.closeAllConnections();
    await new Promise((r) => stack.hubs[0]!.server.close(r));
    const r = await stack.as('alice');
    assert.equal(r.status, 502);
    assert.ok(r.body.includes(FRIENDLY));
    assert.equal(cookieOf(r), 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax', "the cookie still names the user's hub");
  });

  test('a bucket nginx cannot route (no upstream in sharder.yml): 502 with the friendly page, named in the error log', async (t) => {
    const stack = await startStack(t, { buckets: [{ name: 'hub-0', hub: 0 }, { name: 'spare' }] });
    assert.equal(hubOf(await stack.as('alice')), 'hub-0');
    const r = await stack.as('bob');
    assert.equal(await storedBucket(stack, 'bob'), 'spare');
    assert.equal(r.status, 502);
    assert.ok(r.body.includes(FRIENDLY));
    assert.match(stack.nginx.errorLog(), /no resolver defined to resolve sharder_unknown_bucket/);
  });

  test('bucket names that are nginx map keywords route like any other', async (t) => {
    const stack = await startStack(t, {
      buckets: [
        { name: 'default', hub: 0 },
        { name: 'include', hub: 1 },
        { name: 'volatile', hub: 2 },
      ],
    });
    const got = [];
    for (const u of ['u0', 'u1', 'u2', 'u3']) got.push(hubOf(await stack.as(u)));
    assert.deepEqual(got, ['hub-0', 'hub-1', 'hub-2', 'hub-0']);
    assert.deepEqual(await Promise.all(['u0', 'u1', 'u2'].map((u) => storedBucket(stack, u))), [
      'default',
      'include',
      'volatile',
    ]);
  });

  test('a client cannot choose its hub: its own identity header, hub cookie or X-Shard-* headers change nothing', async (t) => {
    const stack = await startStack(t, { front: 'basic' });
    assert.equal(hubOf(await stack.as('alice')), 'hub-0');
    assert.equal(hubOf(await stack.as('bob')), 'hub-1');
    const spoofs: Record<string, string>[] = [
      { cookie: 'hub=hub-2' },
      { 'remote-user': 'bob' },
      { REMOTE_USER: 'bob' },
      { 'x-shard-kind': 'other', 'x-shard-bucket': 'hub-2' },
      { cookie: 'hub=hub-1', 'remote-user': 'bob', 'x-shard-bucket': 'hub-1' },
    ];
    for (const headers of spoofs) {
      const r = await stack.as('alice', '/hub/', headers);
      assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.body}`);
      assert.equal(hubOf(r), 'hub-0', JSON.stringify(headers));
      assert.equal(JSON.parse(r.body).headers.remote_user, 'alice', 'the hub sees the authenticated identity only');
      assert.equal(JSON.parse(r.body).headers['remote-user'], undefined);
    }
    // Without credentials, no header or cookie gets anyone in.
    for (const headers of spoofs)
      assert.equal((await stack.request('/hub/', headers)).status, 401, JSON.stringify(headers));
    assert.deepEqual(
      stack.hubs.map((h) => h.counts.requests),
      [6, 1, 0],
    );
  });

  test('adding a bucket: edit sharder.yml, re-render, nginx -s reload, and new users go to the new hub', async (t) => {
    const stack = await startStack(t);
    for (const u of ['u0', 'u1', 'u2']) await stack.as(u);
    const hub3 = await startHub(t, 'hub-3');
    const raw = structuredClone(stack.rawConfig) as { kinds: { hub: { buckets: unknown[] } } };
    raw.kinds.hub.buckets.push({ name: 'hub-3', upstream: hub3.url });
    const file = writeConfig(stack.sharder.dir, baseRawConfig(stack.sharder.dir, raw));
    // What the operator runs: render with the CLI, check, reload nginx, then reload the sharder.
    const out = join(stack.nginx.dir, 'sharder', 'sharder-upstreams.conf');
    const r = await runCli(['nginx-config', '--config', file, '--sharder', stack.sharderAddress, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(out, 'utf8'), /upstream sharder_hub_hub-3 \{\n {4}server 127\.0\.0\.1:\d+;/);
    await stack.nginx.reload();
    stack.sharder.sharder.reload(loadConfig({ file, env: {} }));
    const got = [];
    for (let i = 3; i < 7; i++) got.push(hubOf(await stack.as(`u${i}`)));
    assert.deepEqual(got, ['hub-3', 'hub-0', 'hub-1', 'hub-2']);
    assert.equal(hubOf(await stack.as('u0')), 'hub-0', 'existing users stay');
  });

  test('identity from oauth2-proxy (X-Auth-Request-User, shipped oauth2-proxy.conf)', async (t) => {
    const sessions: Record<string, string> = { 'c-4d1e': 'carol', 'd-77a0': 'dave', 'e-0b9c': 'erin', 'n-5f21': '' };
    const sessionOf = (u: string): string => Object.keys(sessions).find((k) => sessions[k] === u)!;
    const auth = await startAuthenticator(t, sessions);
    const stack = await startStack(t, { front: { oauth2: auth.port } });
    const session = (u: string): Record<string, string> => ({ cookie: `_oauth2_proxy=${sessionOf(u)}` });
    const carol = await stack.request('/user/carol/tree', session('carol'));
    assert.equal(carol.status, 200, carol.body);
    assert.equal(hubOf(carol), await storedBucket(stack, 'carol'));
    assert.equal(cookieOf(carol), `hub=${hubOf(carol)}; Path=/; HttpOnly; SameSite=Lax`);
    assert.equal(JSON.parse(carol.body).headers.remote_user, 'carol');
    // Not signed in, or a session oauth2-proxy does not know: no hub.
    assert.equal((await stack.request('/hub/')).status, 302);
    assert.equal((await stack.request('/hub/', { cookie: '_oauth2_proxy=carol' })).status, 302);
    // A client's own X-Auth-Request-User is not the identity, with or without a session.
    assert.equal((await stack.request('/hub/', { 'x-auth-request-user': 'carol' })).status, 302);
    const dave = await stack.request('/hub/', {
      'x-auth-request-user': 'carol',
      cookie: `_oauth2_proxy=${sessionOf('dave')}; hub=hub-0`,
    });
    assert.equal(JSON.parse(dave.body).headers.remote_user, 'dave');
    assert.equal(hubOf(dave), await storedBucket(stack, 'dave'));
    assert.notEqual(hubOf(dave), hubOf(carol));
    // oauth2-proxy answering without a user (no --set-xauthrequest): the sharder's 401.
    const noUser = await stack.request('/hub/', { cookie: `_oauth2_proxy=n-5f21` });
    assert.equal(noUser.status, 401);
    // Websockets go through both auth steps as well.
    await stack.request('/hub/', session('erin'));
    const url = stack.nginx.url('/user/erin/terminals/websocket/1').replace('http:', 'ws:');
    const [erin, ls] = await wsMessages(url, session('erin'), ['whoami', 'ls']);
    assert.deepEqual([whoami(erin!), ls], [`${await storedBucket(stack, 'erin')}:erin`, 'ls']);
    assert.deepEqual((await stack.sharder.sharder.store.list('hub', { limit: 10 })).map((a) => a.name).sort(), [
      'carol',
      'dave',
      'erin',
    ]);
    // The hand-over (try_files into /dev/null/) is silent: nothing in nginx's error log.
    assert.doesNotMatch(stack.nginx.errorLog(), /\[(crit|error|alert|emerg)\]/);
  });

  test('oauth2-proxy.conf: an unauthenticated browser is sent (302) to the sign-in page and back to where it was going', async (t) => {
    const auth = await startAuthenticator(t, { 'a-1': 'alice' });
    const stack = await startStack(t, { front: { oauth2: auth.port } });
    const port = stack.nginx.ports[0]!;
    // As oauth2-proxy's guide: error_page 401 = @oauth2_signin; return 302 /oauth2/sign_in?rd=$scheme://$host$request_uri.
    for (const method of ['GET', 'POST']) {
      const r = await rawRequest(
        port,
        '/user/alice/lab/tree/a%20b.ipynb?reset',
        ['Host: jupyter.example.edu', 'Accept: text/html', 'Content-Length: 0'],
        method,
      );
      assert.equal(r.status, 302, `${method}: ${r.body}`);
      const location = new URL(r.header('location')!, `http://127.0.0.1:${port}`);
      assert.equal(location.pathname, '/oauth2/sign_in');
      assert.equal(location.searchParams.get('rd'), 'http://jupyter.example.edu/user/alice/lab/tree/a b.ipynb?reset');
      assert.equal(r.header('set-cookie'), undefined, 'no hub cookie before signing in');
      assert.equal(r.header('x-hub'), undefined);
    }
    // Following it: oauth2-proxy's sign-in page (through location /oauth2/, no authentication).
    const r = await rawRequest(port, '/oauth2/sign_in?rd=http://jupyter.example.edu/hub/', [
      'Host: jupyter.example.edu',
    ]);
    assert.equal(r.status, 200);
    assert.match(r.body, /Sign in/);
    // The auth endpoint itself is internal: a browser cannot query it, nginx does (as a subrequest).
    const asked = auth.calls.length;
    assert.ok(auth.calls.includes('/oauth2/auth'), 'nginx asked oauth2-proxy');
    assert.equal(
      (await rawRequest(port, '/oauth2/auth', ['Host: jupyter.example.edu', 'Cookie: _oauth2_proxy=a-1'])).status,
      404,
    );
    assert.equal(auth.calls.length, asked, "the browser's own /oauth2/auth never reached oauth2-proxy");
    assert.deepEqual(await stack.sharder.sharder.store.list('hub', { limit: 10 }), [], 'nobody was assigned');
    assert.deepEqual(
      stack.hubs.map((h) => h.counts.requests),
      [0, 0, 0],
    );
  });

  test("with the optional auth cache, known users are routed from nginx's cache while the sharder is down", async (t) => {
    const stack = await startStack(t, { cache: true });
    assert.equal(hubOf(await stack.as('alice')), 'hub-0');
    assert.equal(hubOf(await stack.as('bob')), 'hub-1');
    await stack.sharder.sharder.stop(100);
    // Within the 5 s cache time: alice's answer (with its cookie) comes from the cache.
    const r = await stack.as('alice');
    assert.equal(hubOf(r), 'hub-0');
    assert.equal(cookieOf(r), 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax');
    // Cached per identity: carol was never asked about, so she gets the friendly page.
    const carol = await stack.as('u7');
    assert.equal(carol.status, 503);
    assert.ok(carol.body.includes(FRIENDLY));
  });

  test("https hubs: nginx verifies the hub's certificate against the configured CA", async (t) => {
    const dir = tempDir(t);
    const pki = makePki(dir);
    const trust = (ca: string) => ({
      'sharder-route.conf': (text: string) => text.replace('/etc/ssl/certs/ca-certificates.crt', ca),
    });
    const stack = await startStack(t, { hubOptions: { tls: pki.server, host: 'localhost' }, edits: trust(pki.caFile) });
    const r = await stack.as('alice');
    assert.equal(r.status, 200, r.body);
    assert.equal(hubOf(r), 'hub-0');
    // Trusting another CA: nginx refuses the hub's certificate (502), it does not proxy blindly.
    const other = makePki(tempDir(t));
    const untrusting = await startStack(t, {
      hubOptions: { tls: pki.server, host: 'localhost' },
      edits: trust(other.caFile),
    });
    const bad = await untrusting.as('alice');
    assert.equal(bad.status, 502);
    assert.match(untrusting.nginx.errorLog(), /upstream SSL certificate verify error/);
  });
});

/** Resolves a raw configuration the way startSharder does (port 0, SQLite in `dir`). */
function loadConfigFrom(dir: string, raw: Record<string, unknown>) {
  const file = writeConfig(dir, baseRawConfig(dir, raw), 'next.yml');
  return loadConfig({ file, env: {} });
}

/** A CA and a server certificate for "localhost" signed by it, made with openssl. */
function makePki(dir: string): { caFile: string; server: { key: string; cert: string } } {
  const run = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=sharder test CA',
  ]);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'hub.key', '-out', 'hub.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\n');
  run([
    'x509',
    '-req',
    '-in',
    'hub.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'hub.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  return {
    caFile: join(dir, 'ca.pem'),
    server: { key: readFileSync(join(dir, 'hub.key'), 'utf8'), cert: readFileSync(join(dir, 'hub.pem'), 'utf8') },
  };
}
