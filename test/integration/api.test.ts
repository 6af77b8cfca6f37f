/**
 * The admin REST API on the control listener, against a running in-process sharder over real
 * sockets: authentication on every route, every operation, bad requests, and changes reaching
 * /auth at once (the API writes on the server's own connection, so it drops cache entries).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { request } from 'undici';
import type { RawConfig } from '../../src/config/types.js';
import { Sharder } from '../../src/process/sharder.js';
import { get } from '../helpers/http.js';
import { seed } from '../helpers/ops.js';
import { bucketsRaw, testConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ALICE = 'alice-token-0123456789abcdef';

interface Api {
  sharder: Sharder;
  control: string;
  main: string;
  dir: string;
  logs: () => string;
  call(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; json: any; text: string; headers: Record<string, unknown> }>;
}

async function startApi(t: HasAfter, over: RawConfig = {}): Promise<Api> {
  const dir = tempDir(t);
  const config = testConfig(dir, {
    admin: { token: ADMIN, tokens: [{ name: 'alice', token: ALICE }] },
    store: { poll_ms: 60_000 },
    ...over,
  });
  const { sink, text: logs } = logRecorder();
  const sharder = await Sharder.start(config, { log: pino({ level: 'debug' }, sink) });
  t.after(() => sharder.stop(1000));
  const control = sharder.controlUrl!;
  return {
    sharder,
    control,
    main: sharder.url,
    dir,
    logs,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const token = opts.token === undefined ? ADMIN : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const r = await request(`${control}${path}`, { method: method as 'GET', headers, body });
      const text = await r.body.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: r.statusCode, json, text, headers: r.headers };
    },
  };
}

const ROUTES: [string, string][] = [
  ['GET', '/api/objects'],
  ['GET', '/api/objects/hub/x'],
  ['PUT', '/api/objects/hub/x'],
  ['DELETE', '/api/objects/hub/x'],
  ['GET', '/api/buckets'],
  ['POST', '/api/migrations'],
  ['GET', '/api/export'],
  ['POST', '/api/import'],
  ['POST', '/api/import-original'],
  ['GET', '/api/doctor'],
  ['POST', '/api/doctor/repair'],
  ['GET', '/api/audit'],
  ['GET', '/api/no-such-route'],
  ['GET', '/api'],
];

test('every /api route answers 401 with a JSON error without a valid token, and logs no token', async (t) => {
  const api = await startApi(t);
  for (const [method, path] of ROUTES) {
    for (const [token, why] of [
      [null, /missing/],
      ['wrong-token-0123456789abcdef', /invalid token/],
      [`${ADMIN}x`, /invalid token/],
    ] as const) {
      const r = await api.call(method, path, {
        token,
        body: method === 'GET' || method === 'DELETE' ? undefined : { bucket: 'hub-0' },
      });
      assert.equal(r.status, 401, `${method} ${path} with ${token}`);
      assert.equal(r.json.code, 'SHARD_ERR_UNAUTHORIZED');
      assert.match(r.json.message, why);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="sharder"');
    }
  }
  const basic = await api.call('GET', '/api/buckets', {
    token: null,
    headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` },
  });
  assert.equal(basic.status, 401);
  assert.equal(await api.sharder.store.lookup('hub', 'x'), undefined, 'nothing was done');
  const other = await api.call('GET', '/nothing-here', { token: null });
  assert.equal(other.status, 404);
  assert.ok(
    !api.logs().includes(ADMIN.slice(0, 12)) && !api.logs().includes('wrong-token'),
    'tokens never reach the log',
  );
  assert.match(api.logs(), /api_unauthorized/);
});

test('with no admin token configured the API is disabled: 401 everywhere, saying why', async (t) => {
  const dir = tempDir(t);
  const sharder = await Sharder.start(testConfig(dir), { log: pino({ level: 'silent' }) });
  t.after(() => sharder.stop(1000));
  const r = await get(`${sharder.controlUrl}/api/buckets`, { authorization: 'Bearer anything-at-all-0123456' });
  assert.equal(r.status, 401);
  assert.match(JSON.parse(r.body).message, /disabled: no admin token is configured/);
});

test('assign, find, move, list, buckets, delete, audit: each works and takes effect on /auth at once', async (t) => {
  const api = await startApi(t);
  const auth = async (name: string) => (await get(`${api.main}/auth`, { REMOTE_USER: name })).headers['x-shard-bucket'];

  assert.equal(await auth('early'), 'hub-0');
  const put = await api.call('PUT', '/api/objects/hub/a%2Fslash%20name', {
    token: ALICE,
    body: { bucket: 'hub-2', reason: 'vip' },
  });
  assert.equal(put.status, 201);
  assert.deepEqual(put.json, {
    kind: 'hub',
    name: 'a/slash name',
    from: null,
    to: 'hub-2',
    changed: true,
    servers_stopped: false,
    action: 'assign',
  });
  const found = await api.call('GET', '/api/objects/hub/a%2Fslash%20name');
  assert.equal(found.status, 200);
  assert.equal(found.json.bucket, 'hub-2');

  // The moved object is cached by the server: the move must drop it (poll_ms is a minute here).
  assert.equal(await auth('early'), 'hub-0');
  const mv = await api.call('PUT', '/api/objects/hub/early', { token: ALICE, body: { bucket: 'hub-1' } });
  assert.equal(mv.status, 200);
  assert.deepEqual([mv.json.action, mv.json.from, mv.json.to], ['move', 'hub-0', 'hub-1']);
  assert.equal(await auth('early'), 'hub-1');
  assert.equal((await api.call('PUT', '/api/objects/hub/early', { body: { bucket: 'hub-1' } })).json.action, 'none');

  for (let i = 0; i < 5; i++) await auth(`user-${i}`);
  const page1 = await api.call('GET', '/api/objects?limit=3');
  assert.equal(page1.status, 200);
  assert.deepEqual(
    page1.json.items.map((o: { name: string }) => o.name),
    ['a/slash name', 'early', 'user-0'],
  );
  const page2 = await api.call('GET', `/api/objects?limit=3&cursor=${page1.json.next_cursor}`);
  assert.deepEqual(
    page2.json.items.map((o: { name: string }) => o.name),
    ['user-1', 'user-2', 'user-3'],
  );
  const byBucket = await api.call('GET', '/api/objects?bucket=hub-2');
  assert.ok(byBucket.json.items.every((o: { bucket: string }) => o.bucket === 'hub-2'));

  const buckets = await api.call('GET', '/api/buckets');
  assert.equal(buckets.json.total, 7);
  assert.deepEqual(
    buckets.json.buckets.map((b: { name: string; count: number }) => b.count),
    [3, 2, 2],
  );

  const del = await api.call('DELETE', '/api/objects/hub/early?reason=left');
  assert.equal(del.status, 200);
  assert.equal(del.json.from, 'hub-1');
  assert.equal(api.sharder.kind('hub')!.cache.get('early'), undefined, 'dropped from the cache at once');
  assert.equal(await api.sharder.store.lookup('hub', 'early'), undefined);
  assert.equal(await auth('early'), 'hub-1', 'assigned afresh by the policy (hub-1 is now the emptiest)');

  const log = await api.call('GET', '/api/audit?limit=10');
  assert.deepEqual(
    log.json.items.map((e: { action: string; actor: string }) => `${e.action}:${e.actor}`),
    ['delete:api:admin', 'move:api:alice', 'assign:api:alice'],
  );
  assert.equal((await api.call('GET', '/api/audit?name=early&action=delete')).json.items[0].reason, 'left');
  assert.ok(!api.logs().includes(ALICE), 'tokens never reach the log');
  assert.match(api.logs(), /"actor":"api:alice"/);
});

test('bad requests get a clear 4xx JSON error and change nothing', async (t) => {
  const api = await startApi(t);
  await api.call('PUT', '/api/objects/hub/bob', { body: { bucket: 'hub-0' } });
  const cases: [string, string, Parameters<Api['call']>[2], number, string, RegExp?][] = [
    [
      'PUT',
      '/api/objects/hub/bob',
      { body: { bucket: 'hub-9' } },
      400,
      'SHARD_ERR_NO_SUCH_BUCKET',
      /hub-0, hub-1, hub-2/,
    ],
    ['PUT', '/api/objects/hub/bob', { body: {} }, 400, 'SHARD_ERR_BAD_INPUT', /"bucket" is required/],
    [
      'PUT',
      '/api/objects/hub/bob',
      { body: { bucket: 'hub-1', colour: 'red' } },
      400,
      'SHARD_ERR_BAD_INPUT',
      /unknown field "colour"/,
    ],
    [
      'PUT',
      '/api/objects/hub/bob',
      { raw: '{"bucket":', headers: { 'content-type': 'application/json' } },
      400,
      'SHARD_ERR_BAD_INPUT',
      /not valid JSON/,
    ],
    [
      'PUT',
      '/api/objects/hub/bob',
      { raw: 'bucket=hub-1', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      415,
      'SHARD_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    ['PUT', '/api/objects/nokind/bob', { body: { bucket: 'hub-1' } }, 400, 'SHARD_ERR_UNKNOWN_KIND'],
    ['PUT', '/api/objects/hub/%20bob', { body: { bucket: 'hub-1' } }, 400, 'SHARD_ERR_BAD_INPUT', /invalid name/],
    ['GET', '/api/objects/hub/%E0%A4%A', {}, 400, 'SHARD_ERR_BAD_INPUT', /percent-encoded/],
    ['GET', '/api/objects/hub/nobody', {}, 404, 'SHARD_ERR_NOT_FOUND'],
    ['DELETE', '/api/objects/hub/nobody', {}, 404, 'SHARD_ERR_NOT_FOUND'],
    ['GET', '/api/objects?limit=lots', {}, 400, 'SHARD_ERR_BAD_INPUT'],
    ['GET', '/api/objects?colour=red', {}, 400, 'SHARD_ERR_BAD_INPUT', /unknown query parameter/],
    ['POST', '/api/objects', {}, 405, 'SHARD_ERR_METHOD_NOT_ALLOWED'],
    ['POST', '/api/migrations', { body: { from: 'hub-0', to: 'hub-0' } }, 400, 'SHARD_ERR_BAD_INPUT', /onto itself/],
    ['POST', '/api/migrations', { body: { from: 'hub-0' } }, 409, 'SHARD_ERR_BUCKET_ACTIVE', /draining/],
    ['GET', '/api/export?format=xml', {}, 400, 'SHARD_ERR_BAD_INPUT'],
    ['GET', '/api/audit?action=explode', {}, 400, 'SHARD_ERR_BAD_INPUT'],
  ];
  for (const [method, path, opts, status, code, message] of cases) {
    const r = await api.call(method, path, opts);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    assert.equal(r.json.code, code, `${method} ${path}`);
    assert.equal(typeof r.json.message, 'string');
    if (message) assert.match(r.json.message, message);
  }
  assert.equal((await api.call('POST', '/api/objects')).headers.allow, 'GET');
  assert.equal(await api.sharder.store.lookup('hub', 'bob'), 'hub-0');
  assert.equal((await api.call('GET', '/api/audit')).json.items.length, 1);
});

test('migrations: the dry run returns the plan; the real one moves while /auth keeps answering', async (t) => {
  const api = await startApi(t, {
    kinds: { hub: { buckets: bucketsRaw().map((b, i) => (i === 0 ? { ...b, state: 'draining' } : b)) } },
  });
  const db = new Database(join(api.dir, 'sharder.db'));
  t.after(() => db.close());
  seed(db, 'hub', 'hub-0', 3000);
  const dry = await api.call('POST', '/api/migrations', { body: { from: 'hub-0', dry_run: true } });
  assert.equal(dry.status, 200);
  assert.equal(dry.json.plan.length, 3000);
  assert.deepEqual(dry.json.targets, { 'hub-1': 1500, 'hub-2': 1500 });
  assert.equal(dry.json.plan_truncated, false);

  // A known user of hub-0 in the server's cache, and /auth traffic during the migration.
  assert.equal((await get(`${api.main}/auth`, { REMOTE_USER: 'u000000' })).headers['x-shard-bucket'], 'hub-0');
  let stop = false;
  const statuses: number[] = [];
  const load = (async () => {
    for (let i = 0; !stop; i++)
      statuses.push(
        (await get(`${api.main}/auth`, { REMOTE_USER: i % 2 ? `u${String(i % 3000).padStart(6, '0')}` : `new-${i}` }))
          .status,
      );
  })();
  const real = await api.call('POST', '/api/migrations', {
    token: ALICE,
    body: { from: 'hub-0', batch_size: 500, reason: 'retire hub-0' },
  });
  stop = true;
  await load;
  assert.equal(real.status, 200, real.text);
  assert.equal(real.json.moved, 3000);
  assert.equal(real.json.batches, 6);
  assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `statuses ${[...new Set(statuses)].join(',')}`);
  assert.equal(
    (await get(`${api.main}/auth`, { REMOTE_USER: 'u000000' })).headers['x-shard-bucket'],
    dry.json.plan[0].to,
    'the cached user follows at once',
  );
  const batch = await api.call('GET', `/api/audit?batch=${real.json.id}/6&limit=1000`);
  assert.equal(batch.json.items.length, 500);
  assert.equal(batch.json.items[0].actor, 'api:alice');
  const doc = await api.call('GET', '/api/doctor');
  assert.equal(doc.json.ok, true);
  const repair = await api.call('POST', '/api/doctor/repair', { body: {} });
  assert.deepEqual(repair.json.repaired, []);
});

test('export streams CSV and JSON lines; import takes them back; malformed input is a 400 naming the lines', async (t) => {
  const api = await startApi(t);
  for (let i = 0; i < 5; i++) await get(`${api.main}/auth`, { REMOTE_USER: `user "${i}", quoted` });
  const csv = await api.call('GET', '/api/export');
  assert.equal(csv.status, 200);
  assert.match(String(csv.headers['content-type']), /^text\/csv/);
  assert.equal(csv.text.split('\n')[0], 'kind,name,bucket,assigned_at');
  assert.equal(csv.text.trimEnd().split('\n').length, 6);
  const jsonl = await api.call('GET', '/api/export?format=jsonl&kind=hub');
  assert.equal(JSON.parse(jsonl.text.split('\n')[0]!).name, 'user "0", quoted');
  assert.equal((await api.call('GET', '/api/export?kind=nokind')).status, 400);

  const other = await startApi(t);
  const imp = await other.call('POST', '/api/import', { raw: csv.text, headers: { 'content-type': 'text/csv' } });
  assert.equal(imp.status, 200, imp.text);
  assert.deepEqual([imp.json.inserted, imp.json.source], [5, 'request body']);
  assert.equal((await other.call('GET', '/api/export')).text, csv.text);
  const again = await other.call('POST', '/api/import?format=jsonl', { raw: jsonl.text });
  assert.equal(again.json.unchanged, 5);

  const conflict = await other.call('POST', '/api/import', { raw: 'name,bucket\nuser "0"\\, quoted,hub-2\n' });
  assert.equal(conflict.status, 400, 'a stray quote is malformed CSV');
  assert.deepEqual(
    conflict.json.problems.map((p: { at: string }) => p.at),
    ['line 2'],
  );
  const c2 = await other.call('POST', '/api/import', { raw: 'name,bucket\n"user ""0"", quoted",hub-2\n' });
  assert.equal(c2.json.conflict_count, 1);
  const c3 = await other.call('POST', '/api/import?overwrite=true', {
    raw: 'name,bucket\n"user ""0"", quoted",hub-2\n',
  });
  assert.equal(c3.json.overwritten, 1);
});

test('import-original through the API', async (t) => {
  const api = await startApi(t);
  const path = join(api.dir, 'original.sqlite');
  const db = new Database(path);
  db.exec('CREATE TABLE shard (id INTEGER PRIMARY KEY, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256))');
  db.prepare(
    "INSERT INTO shard (kind, bucket, name) VALUES ('hub', 'hub-1', 'dummy-hub-1'), ('hub', 'hub-1', 'iana')",
  ).run();
  db.close();
  const r = await api.call('POST', '/api/import-original', { body: { url: `sqlite:${path}` } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.inserted, r.json.placeholders], [1, 1]);
  assert.equal((await get(`${api.main}/auth`, { REMOTE_USER: 'iana' })).headers['x-shard-bucket'], 'hub-1');
});
