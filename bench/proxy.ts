/**
 * Proxy mode against configurable-http-proxy (JupyterHub's own Node proxy), in one run, against
 * the same test hub: requests/s (wrk) and websocket round-trip latency (ping-pong over one
 * connection), direct to the hub, through `sharder serve --mode proxy`, and through
 * configurable-http-proxy routing to the same hub. Each of the three runs in its own process.
 *
 *   npm run bench:proxy            (BENCH_SECONDS=3 BENCH_ROUNDS=3 BENCH_RTT=3000 by default)
 *
 * Requests/s is the best of BENCH_ROUNDS runs per target, taken in turn (direct, sharder, CHP,
 * direct, …), so that a burst of load from elsewhere on the machine hurts no target alone. As
 * throughput on a shared machine is noisy, the CPU time each proxy process spends per request
 * (from /proc/PID/stat, median of the rounds) is reported too: it does not depend on how much
 * of the machine others take. Websocket round trips are taken in interleaved slices for the
 * same reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/http.js';
import { report, wrk, type BenchRow } from './lib.js';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RTT_COUNT = Number(process.env.BENCH_RTT ?? 3000);
const CONNECTIONS = 32;
/** Websocket round trips are measured in this many interleaved slices per target. */
const RTT_SLICES = 10;
/** Clock ticks per second of /proc/PID/stat's utime and stime (getconf CLK_TCK; 100 on Linux). */
const CLK_TCK = 100;
const IDENTITY = { REMOTE_USER: 'bench-user' };

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sharder-bench-proxy-'));
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts a child process and resolves with the first stdout line matching `ready`. */
function start(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<RegExpExecArray> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  return new Promise((resolvePromise, reject) => {
    const look = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) resolvePromise(m);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${out}`)));
  });
}

async function waitForHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url, { headers: IDENTITY });
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

/** One websocket per target; `slice(n)` times n sequential round trips, in milliseconds. */
async function pinger(url: string): Promise<{ slice(n: number): Promise<number[]>; close(): void }> {
  const ws = new WebSocket(url, { headers: IDENTITY, perMessageDeflate: false });
  await once(ws, 'open');
  const payload = Buffer.alloc(64, 1);
  const one = (): Promise<number> =>
    new Promise((resolvePromise) => {
      const t0 = process.hrtime.bigint();
      ws.once('message', () => resolvePromise(Number(process.hrtime.bigint() - t0) / 1e6));
      ws.send(payload);
    });
  return {
    async slice(n) {
      const times: number[] = [];
      for (let i = 0; i < n; i++) times.push(await one());
      return times;
    },
    close: () => ws.close(),
  };
}

const hubStart = start(['--import', 'tsx', 'bench/proxy-hub.ts'], /^(\d+)\n/m);
const hubPort = Number((await hubStart)[1]);
const hubPid = children.at(-1)!.pid!;
const hub = `http://127.0.0.1:${hubPort}`;

const config = join(dir, 'sharder.yml');
writeFileSync(
  config,
  stringify({
    listen: '127.0.0.1:0',
    database: `sqlite:${join(dir, 'sharder.db')}`,
    log: { level: 'info' },
    kinds: { hub: { buckets: [{ name: 'hub-0', upstream: hub }] } },
  }),
);
const sharder = (
  await start(
    ['--import', 'tsx', 'src/cli/run.ts', 'serve', '--config', config, '--mode', 'proxy'],
    /"listen":"(http:\/\/[^"]+)"/,
  )
)[1]!;
const sharderPid = children.at(-1)!.pid!;

const chpPort = await freePort();
const chpApiPort = await freePort();
// It logs nothing at warn level when it starts: readiness is found by asking it (below).
const chpChild = spawn(
  process.execPath,
  [
    join(ROOT, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy'),
    '--ip',
    '127.0.0.1',
    '--port',
    String(chpPort),
    '--api-ip',
    '127.0.0.1',
    '--api-port',
    String(chpApiPort),
    '--default-target',
    hub,
    '--log-level',
    'warn',
  ],
  {
    cwd: ROOT,
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: randomBytes(16).toString('hex') },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
children.push(chpChild);
const chp = `http://127.0.0.1:${chpPort}`;

const targets = { direct: hub, sharder, chp } as const;
type Name = keyof typeof targets;
/** The process doing each target's work: the hub itself when direct, else the proxy. */
const pids: Record<Name, number> = { direct: hubPid, sharder: sharderPid, chp: chpChild.pid! };
for (const url of Object.values(targets)) await waitForHttp(`${url}/bench`);

const rps: Record<Name, number> = { direct: 0, sharder: 0, chp: 0 };
const cpu: Record<Name, number[]> = { direct: [], sharder: [], chp: [] };
const errors: Record<Name, number> = { direct: 0, sharder: 0, chp: 0 };
for (let round = 0; round < ROUNDS; round++) {
  for (const name of Object.keys(targets) as Name[]) {
    const c0 = cpuSeconds(pids[name]);
    const r = await wrk(`${targets[name]}/bench`, { connections: CONNECTIONS, seconds: SECONDS, headers: IDENTITY });
    const us = ((cpuSeconds(pids[name]) - c0) * 1e6) / r.requests;
    console.log(
      `round ${round + 1} ${name}: ${r.rps.toFixed(0)} requests/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ` +
        `${us.toFixed(1)} CPU µs/request, errors ${r.errors}`,
    );
    rps[name] = Math.max(rps[name], r.rps);
    cpu[name].push(us);
    errors[name] += r.errors;
  }
}
const pingers = {} as Record<Name, Awaited<ReturnType<typeof pinger>>>;
const times: Record<Name, number[]> = { direct: [], sharder: [], chp: [] };
for (const name of Object.keys(targets) as Name[]) {
  pingers[name] = await pinger(`${targets[name].replace('http:', 'ws:')}/ws`);
  await pingers[name].slice(200); // warm-up
}
for (let s = 0; s < RTT_SLICES; s++) {
  for (const name of Object.keys(targets) as Name[])
    times[name].push(...(await pingers[name].slice(Math.ceil(RTT_COUNT / RTT_SLICES))));
}
const lat = {} as Record<Name, { p50: number; p99: number }>;
for (const name of Object.keys(targets) as Name[]) {
  pingers[name].close();
  const sorted = times[name].sort((a, b) => a - b);
  lat[name] = { p50: sorted[Math.floor(sorted.length / 2)]!, p99: sorted[Math.floor(sorted.length * 0.99)]! };
  console.log(
    `${name}: websocket round trip p50 ${lat[name].p50.toFixed(3)} ms, p99 ${lat[name].p99.toFixed(3)} ms ` +
      `(${sorted.length} round trips)`,
  );
}

const row = (
  r: string,
  value: number,
  baseline: number,
  unit: string,
  target: string,
  higherIsBetter: boolean | null,
  note?: string,
): BenchRow => {
  const ratio = value / baseline;
  const met =
    higherIsBetter === null
      ? true
      : higherIsBetter
        ? ratio >= Number(target.slice(3))
        : ratio <= Number(target.slice(3));
  return { row: r, value, baseline, unit, ratio, target, met, ...(note ? { note } : {}) };
};
const e = (n: Name): string | undefined => (errors[n] > 0 ? `${errors[n]} failed requests` : undefined);
report('proxy', [
  row('requests/s: sharder proxy vs direct to the hub', rps.sharder, rps.direct, 'req/s', '-', null, e('sharder')),
  row('requests/s: configurable-http-proxy vs direct to the hub', rps.chp, rps.direct, 'req/s', '-', null, e('chp')),
  row('requests/s: sharder proxy vs configurable-http-proxy', rps.sharder, rps.chp, 'req/s', '>= 1.00', true),
  row(
    'CPU per request: sharder proxy vs configurable-http-proxy',
    median(cpu.sharder),
    median(cpu.chp),
    'µs',
    '<= 1.00',
    false,
  ),
  row('CPU per request: hub alone (direct), for scale', median(cpu.direct), median(cpu.direct), 'µs', '-', null),
  row('websocket RTT p50: sharder proxy vs direct', lat.sharder.p50, lat.direct.p50, 'ms', '-', null),
  row('websocket RTT p50: configurable-http-proxy vs direct', lat.chp.p50, lat.direct.p50, 'ms', '-', null),
  row(
    'websocket RTT p50: sharder proxy vs configurable-http-proxy',
    lat.sharder.p50,
    lat.chp.p50,
    'ms',
    '<= 1.00',
    false,
  ),
  row(
    'websocket RTT p99: sharder proxy vs configurable-http-proxy',
    lat.sharder.p99,
    lat.chp.p99,
    'ms',
    '<= 1.00',
    false,
  ),
]);
process.exit(0);
