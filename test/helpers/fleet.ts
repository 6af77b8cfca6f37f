/**
 * Several `sharder serve` instances on one PostgreSQL (or a primary and its standby), and
 * the client side of their tests: /auth answers with their timing, bounded concurrency, and
 * the table metrics that show what an instance holds in memory.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import type { RawConfig } from '../../src/config/types.js';
import { scrape, sum } from './prom.js';
import { rawConfig, spawnServe, writeConfig } from './sharder.js';
import { until } from './wait.js';
import type { HasAfter } from './context.js';

export interface Answer {
  status: number;
  bucket: string | undefined;
  code: string | undefined;
  /** When the answer arrived (performance.now()). */
  at: number;
  ms: number;
}

export async function auth(agent: Agent, base: string, name: string): Promise<Answer> {
  const started = performance.now();
  try {
    const r = await request(`${base}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
    const body = await r.body.text();
    const bucket = r.headers['x-shard-bucket'];
    const at = performance.now();
    return {
      status: r.statusCode,
      bucket: typeof bucket === 'string' ? bucket : undefined,
      code: r.statusCode === 200 ? undefined : (JSON.parse(body) as { code: string }).code,
      at,
      ms: at - started,
    };
  } catch (err) {
    const at = performance.now();
    return { status: 0, bucket: undefined, code: (err as Error).message, at, ms: at - started };
  }
}

export function newAgent(t: HasAfter): Agent {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  t.after(() => agent.close());
  return agent;
}

/** Runs `fn` over `items`, at most `width` at a time; answers in order. */
export async function pooled<T, R>(
  items: readonly T[],
  width: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export interface Instance {
  url: string;
  control: string;
  output: () => string;
  /** SIGTERM (a graceful stop) and waits until the process has exited. */
  stop: () => Promise<void>;
}

/** Starts instance `i` on `databaseUrl` and waits until its assignment table is loaded. */
export async function serveInstance(
  t: HasAfter,
  dir: string,
  databaseUrl: string,
  i: number,
  over: RawConfig = {},
): Promise<Instance> {
  const file = writeConfig(
    dir,
    rawConfig(dir, { database: databaseUrl, log: { level: 'info' }, store: { poll_ms: 500 }, ...over }),
    `sharder-${i}.yml`,
  );
  const s = await spawnServe(t, file);
  await until(() => s.output().includes('"event":"table_loaded"'), 15_000, `instance ${i} loaded its table`);
  return { url: s.url, control: s.control!, output: s.output, stop: () => stopChild(s.child) };
}

/** Stops a `sharder serve` child gracefully (SIGTERM) and waits for its exit. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** Assignments of kind hub this instance holds in memory. */
export async function tableSize(inst: Instance): Promise<number> {
  return sum((await scrape(inst.control)).samples, 'sharder_cache_entries', { kind: 'hub' });
}

/** Lookups this instance had to send to the store. */
export async function cacheMisses(inst: Instance): Promise<number> {
  return sum((await scrape(inst.control)).samples, 'sharder_cache_misses_total', { kind: 'hub' });
}
