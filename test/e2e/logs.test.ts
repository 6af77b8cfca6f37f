/**
 * Logs of a real `sharder serve`: one JSON line per event, the events operators need (start-up
 * summary, new assignments, admin changes, errors with the request id the answer carried),
 * and no secret anywhere: admin, metrics and hub tokens, the database password and cookies
 * are sent or configured with known values, and the whole output is searched for them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { request } from 'undici';
import { prettyLine } from '../../src/log-pretty.js';
import { cliArgs, rawConfig, ROOT, runCli, runCliProcess, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

const ADMIN = 'admin-SECRET-token-5d41402abc4b2a76';
const METRICS = 'metrics-SECRET-token-7b8b965ad4bca0e4';
const HUB = 'hub-SECRET-token-0cc175b9c0f1b6a8';
const COOKIE = 'session-SECRET-cookie-92eb5ffee6ae2fec';
const DB_PASSWORD = 'db-SECRET-password-3c59dc048e885024';
const SECRETS = [ADMIN, METRICS, HUB, COOKIE, DB_PASSWORD];

interface Line {
  level: number;
  event?: string;
  request_id?: string;
  [k: string]: unknown;
}

async function call(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<{ status: number; id: string | undefined }> {
  const r = await request(url, { method: method as 'GET', headers, body });
  await r.body.dump();
  return { status: r.statusCode, id: r.headers['x-request-id'] as string | undefined };
}

function assertNoSecret(text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `a secret (${s.slice(0, 12)}…) appears in the output`);
  // Nor a recognisable part of one.
  assert.doesNotMatch(text, /SECRET/);
}

test('serve logs one JSON line per event, with request ids on errors and no secret', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(
    dir,
    rawConfig(dir, {
      admin: { token: ADMIN },
      metrics: { token: METRICS },
      log: { level: 'debug' },
      kind_header: 'X-Shard-Kind',
      kinds: {
        hub: {
          buckets: [
            { name: 'hub-0' },
            { name: 'hub-1' },
            { name: 'hub-2', hub_api: { url: 'http://127.0.0.1:9/hub', token_env: 'TEST_HUB_TOKEN' } },
          ],
        },
        home: { buckets: [{ name: 'nfs-0', state: 'draining' }] },
      },
    }),
  );
  const { url, control, child, output } = await spawnServe(t, file, {
    TEST_HUB_TOKEN: HUB,
    SHARDER_LOG_LEVEL: 'debug',
  });
  assert.ok(control);

  assert.equal(
    (await call(`${url}/auth`, { REMOTE_USER: 'ann', Cookie: `hub=hub-0; jupyterhub-session-id=${COOKIE}` })).status,
    200,
  );
  const refused = await call(`${url}/auth`, {
    Cookie: `jupyterhub-session-id=${COOKIE}`,
    Authorization: `Bearer ${ADMIN}`,
  });
  assert.equal(refused.status, 401);
  assert.match(refused.id ?? '', /^[0-9a-f-]{36}$/, 'a refusal carries a request id');
  // nginx's $request_id from a trusted (loopback) proxy is kept; without one, one is made.
  const nginxId = '6b3f1c0e9a7d4e2f8c5b1a0d3e7f9c2b';
  const failed = await call(`${url}/auth`, { REMOTE_USER: 'zed', 'X-Shard-Kind': 'home', 'X-Request-Id': nginxId });
  assert.deepEqual(failed, { status: 503, id: nginxId });
  const failed2 = await call(`${url}/auth`, {
    REMOTE_USER: 'zoe',
    'X-Shard-Kind': 'home',
    'X-Request-Id': 'bad id with spaces',
  });
  assert.equal(failed2.status, 503);
  assert.match(failed2.id ?? '', /^[0-9a-f-]{36}$/, 'a malformed incoming id is replaced');
  assert.equal((await call(`${control}/api/buckets?kind=hub`, { Authorization: `Bearer ${ADMIN}x` })).status, 401);
  const moved = await call(
    `${control}/api/objects/hub/ann`,
    { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    'PUT',
    JSON.stringify({ bucket: 'hub-1', reason: 'rebalance' }),
  );
  assert.equal(moved.status, 200);
  assert.equal((await call(`${control}/metrics`)).status, 401);
  assert.equal((await call(`${control}/metrics`, { Authorization: `Bearer ${METRICS}` })).status, 200);
  assert.equal((await call(`${control}/status`)).status, 200);
  child.kill('SIGHUP');
  await until(() => /"event":"reloaded"/.test(output()), 5000, 'the "reloaded" log line');
  child.kill('SIGTERM');
  await once(child, 'exit');

  const text = output();
  assertNoSecret(text);
  const lines = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
  for (const l of lines) {
    assert.equal(typeof l.time, 'string');
    assert.equal(typeof l.level, 'number');
    assert.equal(l.service, 'sharder');
  }
  const find = (event: string, where: (l: Line) => boolean = () => true): Line => {
    const l = lines.find((x) => x.event === event && where(x));
    assert.ok(l, `no ${event} line in:\n${text}`);
    return l;
  };
  const started = find('started');
  assert.equal(started.config, file);
  assert.deepEqual(started.store, { backend: 'sqlite', location: `${dir}/sharder.db` });
  assert.deepEqual(started.kinds, {
    hub: ['hub-0(active, weight 1)', 'hub-1(active, weight 1)', 'hub-2(active, weight 1)'],
    home: ['nfs-0(draining, weight 1)'],
  });
  assert.equal(started.metrics, 'token');
  assert.deepEqual([find('assigned').kind, find('assigned').name, find('assigned').bucket], ['hub', 'ann', 'hub-0']);
  const change = find('admin_move');
  assert.deepEqual([change.name, change.from, change.to, change.actor], ['ann', 'hub-0', 'hub-1', 'api:admin']);
  assert.equal(
    find('api_request', (l) => l.method === 'PUT').request_id !== undefined,
    true,
    'admin requests carry their request id',
  );
  const error = find('request_failed', (l) => l.request_id === nginxId);
  assert.equal(error.level, 50);
  assert.equal(error.code, 'SHARD_ERR_NO_BUCKET');
  assert.equal(error.path, '/auth');
  find('request_failed', (l) => l.request_id === failed2.id);
  find('request_refused', (l) => l.request_id === refused.id && l.status === 401);
  find('api_unauthorized');
  find('metrics_unauthorized');
  find('reloaded');
  find('stopped');
});

test('a database URL with a password never reaches the output', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { log: { level: 'debug' } }));
  // Nothing listens on port 1: whatever the backend does with it, start-up fails.
  const env = { SHARDER_DATABASE: `postgres://sharder:${DB_PASSWORD}@127.0.0.1:1/sharder`, SHARDER_LOG_LEVEL: 'debug' };
  const serve = await runCliProcess(['serve', '--config', file], { env });
  assert.notEqual(serve.code, 0);
  assertNoSecret(serve.stdout + serve.stderr);
  const check = await runCli(['check-config', '--config', file], { env });
  assertNoSecret(check.stdout + check.stderr);
  const bad = await runCli(['check-config', '--config', file], {
    env: { SHARDER_DATABASE: `postgres://sharder:${DB_PASSWORD}@[bad` },
  });
  assert.notEqual(bad.code, 0);
  assertNoSecret(bad.stdout + bad.stderr);
});

test('log.format: pretty prints readable lines, not JSON', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { admin: { token: ADMIN }, log: { level: 'info', format: 'pretty' } }));
  const child = spawn(process.execPath, cliArgs(['serve', '--config', file]), {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    // Up to the white space after it: a chunk may end inside the address.
    const look = (): void => {
      const m = /sharder listening on (http:\/\/\S+)\s/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  assert.equal((await call(`${url}/auth`, { REMOTE_USER: 'pat' })).status, 200);
  await until(() => /new assignment/.test(out), 5000, 'the "new assignment" log line');
  child.kill('SIGTERM');
  await once(child, 'exit');
  assertNoSecret(out);
  const lines = out.split('\n').filter((l) => l !== '');
  assert.match(
    lines[0]!,
    /^\d\d:\d\d:\d\d\.\d{3} INFO {2}sharder listening on http:\/\/127\.0\.0\.1:\d+ {2}event=started config=\S+ /,
  );
  assert.ok(
    lines.some((l) =>
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}new assignment {2}event=assigned kind=hub name=pat bucket=hub-0$/.test(l),
    ),
    out,
  );
  for (const l of lines) assert.throws(() => JSON.parse(l));
});

test('pretty lines: levels, quoting, errors with their stack, and non-JSON passed through', () => {
  const line = JSON.stringify({
    level: 50,
    time: '2024-05-01T12:34:56.789Z',
    pid: 1,
    service: 'sharder',
    msg: 'failed',
    event: 'x',
    note: 'two words',
    n: 3,
    err: { message: 'boom', stack: 'Error: boom\n    at f' },
  });
  assert.equal(
    prettyLine(line, false),
    '12:34:56.789 ERROR failed  event=x note="two words" n=3 err=boom\n    Error: boom\n        at f\n',
  );
  assert.equal(prettyLine('not json', false), 'not json\n');
  assert.match(
    prettyLine(JSON.stringify({ level: 40, time: '2024-05-01T00:00:00.000Z', msg: 'm' }), true),
    /\x1b\[33mWARN \x1b\[0m m/,
  );
});
