/** Starting the processes a benchmark measures: the compiled sharder, the floor, a seeded store. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { SqliteStore } from '../src/store/sqlite/index.js';
import { testHandle } from '../src/store/test-hook.js';
import type { SqliteTestHandle } from '../src/store/sqlite/index.js';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Proc {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

function waitFor(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = re.exec(out);
      if (m) resolvePromise(m);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${out}`)));
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r();
      child.once('exit', () => r());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    });
}

/** The floor (bench/floor.ts) with `workers` processes; `upstream` is the X-Shard-Upstream it names. */
export async function startFloor(workers: number, upstream?: string): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/floor.ts')], {
    env: {
      ...process.env,
      FLOOR_WORKERS: String(workers),
      ...(upstream === undefined ? {} : { FLOOR_UPSTREAM: upstream }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = await waitFor(child, /listening (\d+)/, 'floor');
  return { child, port: Number(m[1]), stop: stopper(child) };
}

export function ensureBuilt(): void {
  if (!existsSync(join(ROOT, 'dist/cli/run.js')))
    throw new Error('run "npm run build" first: benchmarks measure the compiled sharder');
}

/** A temp dir with a config for the compiled sharder; `extra` overrides keys. */
export function sharderDir(extra: Record<string, unknown> = {}): {
  dir: string;
  config: string;
  db: string;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'sharder-bench-'));
  const db = join(dir, 'sharder.db');
  const config = join(dir, 'sharder.yml');
  writeFileSync(
    config,
    stringify({
      listen: '127.0.0.1:0',
      control_listen: '127.0.0.1:0',
      database: `sqlite:${db}`,
      log: { level: 'info' },
      kinds: {
        hub: { buckets: [0, 1, 2].map((i) => ({ name: `hub-${i}`, upstream: `http://127.0.0.1:${9000 + i}` })) },
      },
      ...extra,
    }),
  );
  return { dir, config, db, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts `node bin/sharder.js serve`; resolves when it (every worker) listens. `logged(re)`
 * resolves with the first match of `re` in everything it wrote since it started. */
export async function startSharder(
  config: string,
  workers = 1,
): Promise<Proc & { readyAfterMs: number; logged(re: RegExp): Promise<RegExpExecArray> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin/sharder.js'), 'serve', '--config', config], {
    env: { ...process.env, SHARDER_WORKERS: String(workers) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const logged = (re: RegExp): Promise<RegExpExecArray> => {
    const now = re.exec(out);
    return now ? Promise.resolve(now) : waitFor(child, new RegExp(`${re.source}`), 'sharder');
  };
  // With workers, the primary's cluster_started line and the workers' own lines share one pipe
  // in no fixed order: wait for the first, then find a worker's address in everything written.
  if (workers > 1) await logged(/"event":"cluster_started"/);
  const port = Number((await logged(/"listen":"http:\/\/127\.0\.0\.1:(\d+)"/))[1]);
  return { child, port, readyAfterMs: performance.now() - t0, stop: stopper(child), logged };
}

/** Seeds `n` assignments user-1..user-n (round robin over hub-0..2) in one transaction. */
export function seed(db: string, n: number): void {
  const store = SqliteStore.open({ path: db, busyTimeoutMs: 5000 });
  testHandle<SqliteTestHandle>(store).exec(`
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${Math.trunc(n)})
    INSERT INTO assignments (kind, name, bucket, assigned_at) SELECT 'hub', 'user-' || i, 'hub-' || (i % 3), 0 FROM s;
  `);
  void store.close();
}
