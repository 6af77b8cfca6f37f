/**
 * `sharder serve` once the configuration is loaded: one sharder, or with `workers: N` the
 * cluster primary (cluster.ts) whose workers each run this again; systemd readiness
 * (systemd.ts) and the signals (signals.ts) wired to whichever runs here.
 */
import { ConfigError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { announceServing, isClusterWorker, runPrimary } from './cluster.js';
import { Sharder } from './sharder.js';
import { untilStopped } from './signals.js';
import { systemdNotifier } from './systemd.js';

export interface ServeOptions {
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** Reads the configuration again (file, environment and the command line's flags), on SIGHUP. */
  readonly load: () => Config;
}

/** Serves until SIGTERM or SIGINT; resolves with the exit status (0 after a stop). */
export async function serveProcess(config: Config, o: ServeOptions): Promise<number> {
  const { log } = o;
  const worker = isClusterWorker();
  // Under systemd (Type=notify) the unit becomes active only once the listener is up; with
  // workers, the primary says so for the group (workers never notify). Workers run this
  // same command line, flags included.
  const notifier = worker ? undefined : systemdNotifier(o.env, log);
  if (config.workers > 1 && !worker) {
    return runPrimary(config, log, o.load, {
      ready: (what) => void notifier?.ready(what),
      stopping: () => void notifier?.stopping('stopping: finishing requests in flight'),
    });
  }
  const sharder = await Sharder.start(config, { log, isWorker: worker });
  if (worker) announceServing();
  else void notifier?.ready(`listening on ${sharder.url}`);
  await untilStopped({
    reload: () => {
      try {
        sharder.reload(o.load());
      } catch (err) {
        const problems =
          err instanceof ConfigError ? err.problems : [{ source: config.file, key: '(file)', message: String(err) }];
        log.error({ event: 'reload_rejected', problems }, 'new configuration rejected; the old one stays in force');
      }
    },
    stop: (signal) => {
      log.info({ event: 'stopping', signal }, `${signal}: stopping`);
      void notifier?.stopping('stopping: finishing requests in flight');
      return sharder.stop();
    },
  });
  return 0;
}
