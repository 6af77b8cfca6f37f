/**
 * `workers: N`: N server processes share one listening socket through node:cluster, so every
 * core answers /auth. Each worker is a complete sharder with its own cache; they share the
 * store, and a move or delete made anywhere reaches every worker's cache the same way it
 * reaches other instances (the store's change feed, within store.poll_ms).
 *
 * The primary only supervises: it migrates the store once before forking (so workers never
 * race on migrations), restarts a worker that dies, forwards SIGHUP after validating the new
 * file itself, gathers the workers' metrics and status for whichever worker is asked
 * (metrics/gather.ts), and on SIGTERM stops the workers gracefully and exits 0.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { serveGathers } from '../metrics/gather.js';
import { openStore } from '../store/registry.js';
import { STOP_GRACE_MS, untilStopped } from './signals.js';

/** A worker that dies sooner than this after starting counts as a crash loop. */
const MIN_UPTIME_MS = 5_000;
/** Delay before restarting a worker that crashed young, doubling up to the maximum. */
const RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

export const isClusterWorker = (): boolean => cluster.isWorker;

/**
 * Said by a worker once every one of its listeners listens (Sharder.start resolved). The primary
 * counts a worker as serving only then: node:cluster's own 'listening' fires for the first
 * listener, and a worker can still fail on the next one (control_listen in use, say).
 */
const SERVING = { sharder: 'serving' } as const;

/** In a worker: tells the primary that this worker serves (see SERVING). */
export function announceServing(): void {
  process.send?.(SERVING);
}

/** Lifecycle callbacks of the process group (systemd readiness). */
export interface PrimaryHooks {
  ready(what: string): void;
  stopping(): void;
}

/**
 * Exit status of a worker that could not start with the configuration (an address in use, say;
 * it printed why). Restarting it would fail the same way, so the group stops with it.
 */
const EXIT_CONFIG = 2;

/**
 * Runs the primary until SIGTERM/SIGINT; resolves once every worker has exited, with the exit
 * status: 0 after a stop, EXIT_CONFIG when a worker refused the configuration at start. `load`
 * reads the configuration again (file, environment and the command line's flags), on SIGHUP.
 */
export async function runPrimary(
  config: Config,
  log: Logger,
  load: () => Config,
  hooks?: PrimaryHooks,
): Promise<number> {
  // Migrate once, here, so that workers open an up-to-date schema.
  await (await openStore(config)).close();

  let stopping = false;
  const started = new Map<Worker, number>();
  let delay = RESTART_DELAY_MS;
  let restarts = 0;
  serveGathers({ configured: config.workers, restarts: () => restarts });

  const fork = (): Worker => {
    const w = cluster.fork();
    started.set(w, Date.now());
    return w;
  };

  const served = new WeakSet<Worker>();
  /** Until the whole group served once, a configuration refusal stops it; later, workers are restarted. */
  let starting = true;
  let refused: (() => void) | undefined;
  const serving = new Promise<boolean>((resolve) => {
    let up = 0;
    cluster.on('message', (worker: Worker, m: unknown) => {
      if (typeof m !== 'object' || m === null || (m as { sharder?: unknown }).sharder !== SERVING.sharder) return;
      if (served.has(worker)) return;
      served.add(worker);
      if (++up === config.workers) resolve(true);
    });
    refused = () => resolve(false);
  });

  cluster.on('exit', (worker, code, signal) => {
    const age = Date.now() - (started.get(worker) ?? 0);
    started.delete(worker);
    if (stopping) return;
    if (starting && code === EXIT_CONFIG && !served.has(worker)) {
      log.error(
        { event: 'worker_refused_config', pid: worker.process.pid, code },
        'a worker cannot start with this configuration (it said why above): stopping',
      );
      refused?.();
      return;
    }
    log.error({ event: 'worker_exited', pid: worker.process.pid, code, signal }, 'worker exited; restarting it');
    delay = age < MIN_UPTIME_MS ? Math.min(delay * 2, MAX_RESTART_DELAY_MS) : RESTART_DELAY_MS;
    setTimeout(() => {
      if (stopping) return;
      restarts++;
      fork();
    }, delay).unref();
  });

  Array.from({ length: config.workers }, fork);
  const ok = await serving;
  starting = false;
  if (!ok) {
    stopping = true;
    await stopWorkers([...started.keys()]);
    return EXIT_CONFIG;
  }
  log.info(
    { event: 'cluster_started', workers: config.workers, primary: process.pid },
    `${config.workers} workers serving`,
  );
  hooks?.ready(`${config.workers} workers serving`);

  await untilStopped({
    reload: () => {
      try {
        const next = load();
        if (next.workers !== config.workers)
          log.warn({ event: 'reload_ignored', key: 'workers' }, 'workers changed: restart to apply');
      } catch (err) {
        // Each worker would reject it too; say it once, here.
        log.error(
          { event: 'reload_rejected', problems: err instanceof ConfigError ? err.problems : String(err) },
          'new configuration rejected; the old one stays in force',
        );
        return;
      }
      for (const w of started.keys()) w.process.kill('SIGHUP');
    },
    stop: (signal) => {
      stopping = true;
      hooks?.stopping();
      log.info({ event: 'stopping', signal }, `${signal}: stopping workers`);
      return stopWorkers([...started.keys()]);
    },
  });
  return 0;
}

/** SIGTERM to each worker; resolves once all have exited (SIGKILL after the grace period). */
function stopWorkers(alive: Worker[]): Promise<void> {
  return new Promise<void>((resolve) => {
    if (alive.length === 0) return resolve();
    let left = alive.length;
    for (const w of alive) {
      w.once('exit', () => --left === 0 && resolve());
      w.process.kill('SIGTERM');
    }
    // Workers finish requests in flight within STOP_GRACE_MS; never wait forever.
    setTimeout(() => {
      for (const w of alive) if (!w.isDead()) w.process.kill('SIGKILL');
      resolve();
    }, STOP_GRACE_MS + 5_000).unref();
  });
}
