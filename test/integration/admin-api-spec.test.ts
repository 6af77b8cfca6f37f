/**
 * docs/admin-api.yaml against the sharder itself:
 * (a) it is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator);
 * (b) it describes exactly the control listener's routes, methods, path parameters and access
 *     (the real ControlRouter's table), and exactly the query parameters and body fields each
 *     route accepts (read from the route's own "unknown parameter" answer);
 * (c) real answers of a running sharder, success and error cases of every route, have a status
 *     the spec lists for that operation, the headers it names, and a body its schema accepts
 *     (ajv, JSON Schema 2020-12, the dialect of OpenAPI 3.1).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { running, startFakeHub } from '../helpers/fake-hub.js';
import { writeOriginalSqlite } from '../helpers/ops-suite.js';
import { ROOT, bucketsRaw, startSharder } from '../helpers/sharder.js';

const SPEC_FILE = join(ROOT, 'docs', 'admin-api.yaml');
/** The spec's id for ajv, which resolves the schemas' #/components references against it. */
const SPEC_ID = 'https://sharder.invalid/docs/admin-api.yaml';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;
const ADMIN = 'spec-test-admin-token-0123456789';
const METRICS = 'spec-test-metrics-token-0123456789';
const HUB_TOKEN = 'spec-test-hub-token-0123456789';

type Json = Record<string, any>;

const loadSpec = (): Json => parse(readFileSync(SPEC_FILE, 'utf8')) as Json;

/** `/api/objects/{kind}/{name}` for the router's `/api/objects/:kind/:name`. */
const template = (routerPath: string): string => routerPath.replace(/:([^/]+)/g, '{$1}');

const pointer = (...parts: string[]): string =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

function deref(spec: Json, node: Json): Json {
  while (typeof node.$ref === 'string') {
    node = node.$ref
      .slice(2)
      .split('/')
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce((o: Json, k) => o[k], spec);
  }
  return node;
}

/** The operations of the spec, as `METHOD /path`. */
function operations(spec: Json): Map<string, { path: string; method: string; op: Json; params: Json[] }> {
  const out = new Map<string, { path: string; method: string; op: Json; params: Json[] }>();
  for (const [path, item] of Object.entries(spec.paths as Json)) {
    for (const method of METHODS) {
      const op = (item as Json)[method] as Json | undefined;
      if (op === undefined) continue;
      const params = [...((item as Json).parameters ?? []), ...(op.parameters ?? [])].map((p: Json) => deref(spec, p));
      out.set(`${method.toUpperCase()} ${path}`, { path, method, op, params });
    }
  }
  return out;
}

/** What the spec says a route needs, in the router's words. */
function accessOf(spec: Json, op: Json): string {
  const schemes = ((op.security ?? spec.security) as Json[])
    .map((s) => Object.keys(s).join('+') || 'none')
    .sort()
    .join(',');
  return (
    (
      {
        adminBearer: 'admin',
        'metricsBearer,none': 'metrics',
        'adminBearer,none,statusBasic': 'status',
        none: 'open',
      } as Record<string, string>
    )[schemes] ?? `unknown (${schemes})`
  );
}

test('(a) docs/admin-api.yaml is a valid OpenAPI 3.1 document', async () => {
  const validator = new Validator();
  const result = await validator.validate(loadSpec());
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  assert.equal(validator.version, '3.1');
});

test('(b) the spec describes every route, method, path parameter and access of the real router, and nothing else', async (t) => {
  const spec = loadSpec();
  const { sharder } = await startSharder(t, { admin: { token: ADMIN } });
  const routes = sharder.router.list();
  assert.ok(routes.length >= 14, `the router lists its routes (${routes.length})`);
  const ops = operations(spec);
  const problems: string[] = [];
  for (const r of routes) {
    const key = `${r.method} ${template(r.path)}`;
    const o = ops.get(key);
    if (o === undefined) {
      problems.push(`${key}: served, but not in docs/admin-api.yaml`);
      continue;
    }
    const wanted = [...r.path.matchAll(/:([^/]+)/g)].map((m) => m[1]!).sort();
    const described = o.params
      .filter((p) => p.in === 'path')
      .map((p) => p.name as string)
      .sort();
    if (wanted.join() !== described.join())
      problems.push(`${key}: path parameters ${wanted.join(', ')}, described ${described.join(', ')}`);
    if (accessOf(spec, o.op) !== r.access)
      problems.push(`${key}: needs ${r.access}, the spec's security says ${accessOf(spec, o.op)}`);
  }
  const served = new Set(routes.map((r) => `${r.method} ${template(r.path)}`));
  for (const key of ops.keys())
    if (!served.has(key)) problems.push(`${key}: in docs/admin-api.yaml, but the router has no such route`);
  assert.deepEqual(problems, []);
});

/** A running sharder with an admin token, a metrics token, a hub API on hub-1 and a draining hub-3. */
async function fixture(t: Parameters<typeof startSharder>[0]) {
  const hub = await startFakeHub(t, HUB_TOKEN);
  const buckets = bucketsRaw();
  buckets[1] = { ...buckets[1], hub_api: { url: hub.url, token: HUB_TOKEN } };
  buckets.push({ name: 'hub-3', upstream: 'http://127.0.0.1:9003', state: 'draining' });
  const s = await startSharder(t, {
    admin: { token: ADMIN },
    metrics: { token: METRICS },
    status: { loopback_without_token: false },
    kinds: { hub: { buckets } },
  });
  const control = `http://127.0.0.1:${(s.sharder.control!.address() as { port: number }).port}`;
  return { ...s, hub, control };
}

interface Call {
  method: string;
  /** The spec's path template, for finding the operation. */
  path: string;
  /** The path actually requested (template filled in, with a query). */
  url: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
}

test(
  '(c) real answers of every route, success and errors, match the spec: status, headers, body',
  { timeout: 120_000 },
  async (t) => {
    const spec = loadSpec();
    const ops = operations(spec);
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(spec, SPEC_ID);
    const f = await fixture(t);
    const auth = { Authorization: `Bearer ${ADMIN}` };
    const asJson = { ...auth, 'Content-Type': 'application/json' };
    const seen = new Map<string, Set<number>>();

    async function call(c: Call): Promise<{ status: number; text: string; headers: Headers }> {
      const key = `${c.method} ${c.path}`;
      const o = ops.get(key);
      assert.ok(o, `${key} is described`);
      const res = await fetch(`${f.control}${c.url}`, { method: c.method, headers: c.headers ?? auth, body: c.body });
      const text = await res.text();
      const where = `${c.method} ${c.url} → ${res.status} ${text.slice(0, 300)}`;
      assert.equal(res.status, c.status, where);
      const responses = o.op.responses as Json;
      const declared = responses[String(res.status)] ?? responses.default;
      assert.ok(declared, `${where}: status ${res.status} is not in the spec for ${key}`);
      const response = deref(spec, declared);
      const base =
        typeof declared.$ref === 'string'
          ? `${SPEC_ID}${declared.$ref}`
          : `${SPEC_ID}#/${pointer('paths', o.path, o.method, 'responses', String(res.status))}`;
      for (const h of Object.keys(response.headers ?? {}))
        assert.ok(res.headers.has(h), `${where}: the spec names the header ${h}`);
      assert.ok(res.headers.has('x-request-id'), `${where}: X-Request-Id`);
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      assert.ok(
        response.content?.[type],
        `${where}: content type ${type} is not in the spec (${Object.keys(response.content ?? {}).join(', ')})`,
      );
      const validate = ajv.getSchema(`${base}/${pointer('content', type, 'schema')}`);
      assert.ok(validate, `${where}: the response schema compiles`);
      const value = type === 'application/json' ? JSON.parse(text) : text;
      assert.ok(validate(value), `${where}: ${ajv.errorsText(validate.errors)}`);
      if (!seen.has(key)) seen.set(key, new Set());
      seen.get(key)!.add(res.status);
      return { status: res.status, text, headers: res.headers };
    }

    const put = (
      name: string,
      body: unknown,
      status: number,
      headers: Record<string, string> = asJson,
    ): Promise<unknown> =>
      call({
        method: 'PUT',
        path: '/api/objects/{kind}/{name}',
        url: `/api/objects/hub/${encodeURIComponent(name)}`,
        body: JSON.stringify(body),
        headers,
        status,
      });

    // Objects: explicit assignment, move, find, list, delete, and their errors.
    await put('iana', { bucket: 'hub-0', reason: 'spec test' }, 201);
    await put('iana', { bucket: 'hub-1' }, 200);
    await put('iana', { bucket: 'hub-1' }, 200);
    await put('ryan', { bucket: 'hub-9' }, 400);
    await put('ryan', { bucket: 'hub-0' }, 415, { ...auth, 'Content-Type': 'text/plain' });
    await call({
      method: 'PUT',
      path: '/api/objects/{kind}/{name}',
      url: '/api/objects/hub/ryan',
      body: 'x'.repeat(1024 * 1024 + 1),
      headers: asJson,
      status: 413,
    });
    running(f.hub, 'iana', '');
    await put('iana', { bucket: 'hub-2' }, 409);
    f.hub.failWith = 500;
    await put('iana', { bucket: 'hub-2' }, 502);
    delete f.hub.failWith;
    f.hub.users.clear();
    await call({ method: 'GET', path: '/api/objects/{kind}/{name}', url: '/api/objects/hub/iana', status: 200 });
    await call({ method: 'GET', path: '/api/objects/{kind}/{name}', url: '/api/objects/hub/nobody', status: 404 });
    await call({ method: 'GET', path: '/api/objects/{kind}/{name}', url: '/api/objects/nokind/iana', status: 400 });
    for (const n of ['a', 'b', 'c']) await put(n, { bucket: 'hub-3' }, 201);
    const page = JSON.parse(
      (await call({ method: 'GET', path: '/api/objects', url: '/api/objects?kind=hub&limit=2', status: 200 })).text,
    ) as { next_cursor: string };
    await call({
      method: 'GET',
      path: '/api/objects',
      url: `/api/objects?limit=2&cursor=${encodeURIComponent(page.next_cursor)}`,
      status: 200,
    });
    await call({ method: 'GET', path: '/api/objects', url: '/api/objects?cursor=garbage', status: 400 });
    await call({
      method: 'DELETE',
      path: '/api/objects/{kind}/{name}',
      url: '/api/objects/hub/c?reason=spec',
      status: 200,
    });
    await call({ method: 'DELETE', path: '/api/objects/{kind}/{name}', url: '/api/objects/hub/c', status: 404 });

    // Buckets, migrations.
    await call({ method: 'GET', path: '/api/buckets', url: '/api/buckets?kind=hub', status: 200 });
    await call({ method: 'GET', path: '/api/buckets', url: '/api/buckets?kind=nokind', status: 400 });
    const migrate = (body: unknown, status: number): Promise<unknown> =>
      call({
        method: 'POST',
        path: '/api/migrations',
        url: '/api/migrations',
        body: JSON.stringify(body),
        headers: asJson,
        status,
      });
    await migrate({ from: 'hub-3', dry_run: true }, 200);
    await migrate({ from: 'hub-0' }, 409);
    await migrate({ from: 'hub-3', to: 'hub-3' }, 400);
    await migrate({ from: 'hub-3', to: 'hub-2', reason: 'spec test' }, 200);

    // Export, import, import-original.
    await call({ method: 'GET', path: '/api/export', url: '/api/export', status: 200 });
    await call({ method: 'GET', path: '/api/export', url: '/api/export?kind=hub&format=jsonl', status: 200 });
    await call({ method: 'GET', path: '/api/export', url: '/api/export?format=xml', status: 400 });
    const csv = 'kind,name,bucket\nhub,zed,hub-2\n';
    await call({
      method: 'POST',
      path: '/api/import',
      url: '/api/import?reason=spec',
      body: csv,
      headers: { ...auth, 'Content-Type': 'text/csv' },
      status: 200,
    });
    await call({
      method: 'POST',
      path: '/api/import',
      url: '/api/import',
      body: 'kind,name,bucket\nhub,zed,hub-9\n',
      headers: { ...auth, 'Content-Type': 'text/csv' },
      status: 400,
    });
    const original = join(f.dir, 'original.sqlite');
    writeOriginalSqlite(original, [
      ['hub', 'hub-0', 'dummy-hub-0'],
      ['hub', 'hub-0', 'olduser'],
    ]);
    const notDb = join(f.dir, 'not-a-database.txt');
    writeFileSync(notDb, 'hello\n');
    const fromOriginal = (url: string, status: number): Promise<unknown> =>
      call({
        method: 'POST',
        path: '/api/import-original',
        url: '/api/import-original',
        body: JSON.stringify({ url }),
        headers: asJson,
        status,
      });
    await fromOriginal(original, 200);
    await fromOriginal(notDb, 400);
    await fromOriginal(join(f.dir, 'missing.sqlite'), 502);

    // Checks and the audit log.
    await call({ method: 'GET', path: '/api/doctor', url: '/api/doctor', status: 200 });
    await call({ method: 'GET', path: '/api/doctor', url: '/api/doctor?kind=nokind', status: 400 });
    await call({
      method: 'POST',
      path: '/api/doctor/repair',
      url: '/api/doctor/repair',
      body: '{"reason":"spec"}',
      headers: asJson,
      status: 200,
    });
    await call({
      method: 'POST',
      path: '/api/doctor/repair',
      url: '/api/doctor/repair',
      body: '{',
      headers: asJson,
      status: 400,
    });
    await call({ method: 'GET', path: '/api/audit', url: '/api/audit?limit=2&action=move', status: 200 });
    await call({ method: 'GET', path: '/api/audit', url: '/api/audit?action=bogus', status: 400 });

    // The admin token, /metrics and /status with and without their credentials.
    await call({
      method: 'GET',
      path: '/api/buckets',
      url: '/api/buckets',
      headers: { Authorization: 'Bearer wrong-token-wrong-token' },
      status: 401,
    });
    await call({
      method: 'GET',
      path: '/metrics',
      url: '/metrics',
      headers: { Authorization: `Bearer ${METRICS}` },
      status: 200,
    });
    await call({ method: 'GET', path: '/metrics', url: '/metrics', headers: auth, status: 401 });
    await call({ method: 'GET', path: '/status', url: '/status?refresh=0', status: 200 });
    await call({
      method: 'GET',
      path: '/status',
      url: '/status',
      headers: { Authorization: `Basic ${Buffer.from(`anyone:${ADMIN}`).toString('base64')}` },
      status: 200,
    });
    await call({ method: 'GET', path: '/status', url: '/status', headers: {}, status: 401 });

    // Every operation was seen succeeding and failing.
    const missing = [...ops.keys()].filter((k) => {
      const s = [...(seen.get(k) ?? [])];
      return !s.some((x) => x < 300) || !s.some((x) => x >= 400);
    });
    assert.deepEqual(missing, [], 'every operation is exercised with a success and an error');

    // Answers any route can give are errors of the shared shape.
    const validateError = ajv.getSchema(`${SPEC_ID}#/components/schemas/Error`)!;
    for (const [url, method, status] of [
      ['/api/nothing-here', 'GET', 404],
      ['/api/buckets', 'DELETE', 405],
      ['/nothing', 'GET', 404],
    ] as const) {
      const res = await fetch(`${f.control}${url}`, { method, headers: auth });
      assert.equal(res.status, status, url);
      assert.ok(validateError(await res.json()), `${method} ${url}: ${ajv.errorsText(validateError.errors)}`);
      if (status === 405) assert.ok(res.headers.get('allow'), 'Allow');
    }
  },
);

test('(b) every query parameter and body field a route accepts is described, and no other', async (t) => {
  const spec = loadSpec();
  const ops = operations(spec);
  const f = await fixture(t);
  const problems: string[] = [];
  for (const [key, o] of ops) {
    if (!o.path.startsWith('/api/')) continue; // /metrics and /status ignore their query
    const url = `${f.control}${o.path.replace('{kind}', 'hub').replace('{name}', 'iana')}`;
    // The route's own answer to an unknown parameter lists the ones it knows.
    const body = o.op.requestBody === undefined ? undefined : deref(spec, o.op.requestBody);
    const schema = body?.content?.['application/json']?.schema as Json | undefined;
    const described = o.params
      .filter((p) => p.in === 'query')
      .map((p) => p.name as string)
      .sort();
    if (schema !== undefined) {
      // A route that reads a JSON body takes everything from it and never reads the query.
      if (described.length > 0) problems.push(`${key}: reads a JSON body, but query parameters are described`);
    } else {
      const q = await fetch(`${url}?zzz=1`, {
        method: o.method.toUpperCase(),
        headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
        body: o.method === 'get' || o.method === 'delete' ? undefined : '{}',
      });
      const qm = /unknown query parameter "zzz" \(known: ([^)]*)\)/.exec(
        ((await q.json()) as { message: string }).message,
      );
      const known =
        qm === null
          ? null
          : qm[1]!
              .split(', ')
              .filter((x) => x !== '')
              .sort();
      if (known === null) problems.push(`${key}: ?zzz=1 answered ${q.status}, not the unknown-parameter refusal`);
      else if (known.join() !== described.join())
        problems.push(
          `${key}: accepts query ${known.join(', ') || 'none'}, described ${described.join(', ') || 'none'}`,
        );
      continue;
    }
    const b = await fetch(url, {
      method: o.method.toUpperCase(),
      headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
      body: '{"zzz":1}',
    });
    const bm = /unknown field "zzz" \(known: ([^)]*)\)/.exec(((await b.json()) as { message: string }).message);
    const fields = Object.keys(deref(spec, schema).properties ?? {}).sort();
    if (!bm) problems.push(`${key}: an unknown body field was not refused`);
    else if (bm[1]!.split(', ').sort().join() !== fields.join())
      problems.push(`${key}: accepts fields ${bm[1]}, described ${fields.join(', ')}`);
  }
  assert.deepEqual(problems, []);
});

test('(c) a source over the failure limit gets the 429 the spec describes', async (t) => {
  const spec = loadSpec();
  const ajv = new Ajv2020({ strict: false });
  ajv.addSchema(spec, SPEC_ID);
  const s = await startSharder(t, { admin: { token: ADMIN } });
  const control = `http://127.0.0.1:${(s.sharder.control!.address() as { port: number }).port}`;
  let res: Response | undefined;
  for (let i = 0; i < 61; i++) {
    res = await fetch(`${control}/api/buckets`, { headers: { Authorization: 'Bearer wrong-token-wrong-token' } });
    await res.arrayBuffer();
    if (res.status === 429) break;
  }
  res = await fetch(`${control}/api/buckets`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 429);
  assert.ok(deref(spec, spec.paths['/api/buckets'].get.responses['429']), 'the spec lists 429');
  assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
  const validate = ajv.getSchema(
    `${SPEC_ID}#/components/responses/RateLimited/${pointer('content', 'application/json', 'schema')}`,
  )!;
  assert.ok(validate(await res.json()), ajv.errorsText(validate.errors));
});
