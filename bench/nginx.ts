/**
 * nginx + auth_request → sharder, next to nginx + auth_request → a bare node:http server that
 * always answers 200 with constant headers (the floor: the least any auth backend can cost).
 * Both use the shipped auth location (nginx/sharder-auth.conf) unchanged, and the main request
 * really needs the subrequest (`return` would run before auth_request and skip it):
 *
 *   static  the main request is a static file served by nginx: nothing else dilutes the
 *           subrequest's cost, so this is the strict comparison;
 *   proxied the shipped sharder-server.conf as deployed, proxying to a node:http test hub.
 *
 * Each backend is its own process, as in production; the rounds alternate sharder/floor to
 * spread the machine's noise over both. Run: npm run bench:nginx  (needs nginx and wrk).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { renderNginxConfig } from '../src/nginx/render.js';
import {
  httpPreamble,
  mainPreamble,
  nginxBinary,
  nginxPrefix,
  startNginx,
  type RunningNginx,
} from '../test/helpers/nginx.js';
import { rawConfig, spawnServe, testConfig, writeConfig } from '../test/helpers/sharder.js';
import { tempDir } from '../test/helpers/tmp.js';
import { report, wrk, type BenchRow } from './lib.js';
import { startFloor } from './procs.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const TARGET = 0.85;
const USER = 'bench-user';

/** Cleanup in reverse order, like node:test's t.after. */
const cleanups: (() => unknown)[] = [];
const scope = { after: (fn: () => unknown) => void cleanups.push(fn) };
async function cleanup(): Promise<void> {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch {
      // best effort
    }
  }
}

/** A node:http server in its own process; resolves with its port. */
async function nodeServer(script: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  scope.after(() => child.kill('SIGKILL'));
  const [line] = (await once(child.stdout.setEncoding('utf8'), 'data')) as [string];
  return { child, port: Number(line.trim()) };
}

const LISTEN = `
  server.keepAliveTimeout = 75000;
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;

const HUB_SCRIPT =
  `const server = require('node:http').createServer((req, res) => { res.writeHead(200, { 'Content-Type': ` +
  `'text/plain', 'Content-Length': '6' }); res.end('hub-0\\n'); });${LISTEN}`;

/** One nginx whose `sharder` upstream is `backend`, with a static server and a proxied one. */
async function nginxFor(backend: string, hubUpstream: string, sharderDir: string): Promise<RunningNginx> {
  const dir = nginxPrefix(scope);
  const config = testConfig(sharderDir, { kinds: { hub: { buckets: [{ name: 'hub-0', upstream: hubUpstream }] } } });
  writeFileSync(
    join(dir, 'sharder', 'sharder-upstreams.conf'),
    renderNginxConfig(config, { sharders: [backend] }).text,
  );
  mkdirSync(join(dir, 'static'), { mode: 0o755 });
  writeFileSync(join(dir, 'static', 'index.html'), 'static page\n', { mode: 0o644 });
  return startNginx(
    scope,
    dir,
    ([staticPort, proxiedPort]) => `${mainPreamble(dir)}
http {
${httpPreamble(dir)}
access_log off;
include sharder/sharder-http.conf;
server {
    listen 127.0.0.1:${staticPort};
    set $sharder_identity $http_x_user;
    include sharder/sharder-auth.conf;
    location / {
        auth_request /_sharder/auth;
        auth_request_set $sharder_bucket $upstream_http_x_shard_bucket;
        auth_request_set $sharder_cookie $upstream_http_set_cookie;
        add_header Set-Cookie $sharder_cookie always;
        root ${dir}/static;
        try_files /index.html =404;
    }
}
server {
    listen 127.0.0.1:${proxiedPort};
    set $sharder_identity $http_x_user;
    include sharder/sharder-server.conf;
}
}
`,
    2,
  );
}

/** One request, checked: the subrequest happened (cookie set) and the main request was served. */
async function check(url: string, expectBody: string, isSharder: boolean): Promise<void> {
  const r = await request(url, { headers: { 'x-user': USER } });
  const body = await r.body.text();
  if (
    r.statusCode !== 200 ||
    r.headers['set-cookie'] !== 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax' ||
    body !== expectBody
  ) {
    throw new Error(`setup check failed for ${url}: ${r.statusCode} ${JSON.stringify(r.headers)} ${body}`);
  }
  if (!isSharder) return; // the floor answers 200 to anyone
  const none = await request(url);
  await none.body.text();
  if (none.statusCode !== 401)
    throw new Error(`setup check: no identity should be 401 at ${url}, got ${none.statusCode}`);
}

async function main(): Promise<void> {
  if (!nginxBinary()) throw new Error('nginx not found (apt-get install nginx-light)');
  const dir = tempDir(scope, 'sharder-bench-');
  const hub = await nodeServer(HUB_SCRIPT);
  const hubUpstream = `http://127.0.0.1:${hub.port}`;
  const floor = await startFloor(1, hubUpstream);
  scope.after(() => floor.stop());
  const sharderFile = writeConfig(
    dir,
    rawConfig(dir, { log: { level: 'info' }, kinds: { hub: { buckets: [{ name: 'hub-0', upstream: hubUpstream }] } } }),
  );
  const sharder = await spawnServe(scope, sharderFile);
  // Stop it gracefully and wait, so that its database is closed before its folder is removed.
  scope.after(async () => {
    if (sharder.child.exitCode !== null || sharder.child.signalCode !== null) return;
    const exited = once(sharder.child, 'exit');
    sharder.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  });
  const sharderPort = Number(new URL(sharder.url).port);

  const viaSharder = await nginxFor(`127.0.0.1:${sharderPort}`, hubUpstream, dir);
  const viaFloor = await nginxFor(`127.0.0.1:${floor.port}`, hubUpstream, dir);
  for (const n of [viaSharder, viaFloor]) {
    await check(n.url('/', n.ports[0]), 'static page\n', n === viaSharder);
    await check(n.url('/', n.ports[1]), 'hub-0\n', n === viaSharder);
  }

  const rows: BenchRow[] = [];
  for (const [name, portIndex] of [
    ['static', 0],
    ['proxied', 1],
  ] as const) {
    const totals = {
      sharder: { requests: 0, seconds: 0, errors: 0, p99: 0 },
      floor: { requests: 0, seconds: 0, errors: 0, p99: 0 },
    };
    const perRound: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [who, n] of [
        ['sharder', viaSharder],
        ['floor', viaFloor],
      ] as const) {
        const url = n.url('/', n.ports[portIndex]);
        await wrk(url, { seconds: 1, connections: CONNECTIONS, headers: { 'X-User': USER } }); // warm-up
        const r = await wrk(url, { seconds: SECONDS, connections: CONNECTIONS, headers: { 'X-User': USER } });
        totals[who].requests += r.requests;
        totals[who].seconds += SECONDS;
        totals[who].errors += r.errors;
        totals[who].p99 = Math.max(totals[who].p99, r.p99);
        perRound.push(`${who} ${r.rps.toFixed(0)}`);
      }
    }
    const value = totals.sharder.requests / totals.sharder.seconds;
    const baseline = totals.floor.requests / totals.floor.seconds;
    rows.push({
      row: `${name}: nginx+auth_request -> sharder vs -> bare node:http`,
      value,
      baseline,
      unit: 'req/s',
      ratio: value / baseline,
      target: `>= ${TARGET}`,
      met: value / baseline >= TARGET && totals.sharder.errors === 0 && totals.floor.errors === 0,
      note:
        `rounds (req/s): ${perRound.join(', ')}; p99 ms sharder ${totals.sharder.p99.toFixed(2)}, floor ` +
        `${totals.floor.p99.toFixed(2)}; errors sharder ${totals.sharder.errors}, floor ${totals.floor.errors}`,
    });
  }
  report('nginx', rows);
  console.log(
    `\n${ROUNDS} rounds x ${SECONDS}s per side, wrk -t1 -c${CONNECTIONS}, one known user, nginx ` +
      `worker_processes 1; machine: ${(await import('node:os')).cpus().length} CPUs`,
  );
}

main().then(cleanup, async (err: unknown) => {
  await cleanup();
  console.error(err);
  process.exitCode = 1;
});
