import { ConfigError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadConfig } from '../../config/load.js';
import { Sharder } from '../../server.js';
import { isClusterWorker, runPrimary } from '../../cluster.js';
import { systemdNotifier } from '../../service/systemd.js';
import { MODES, type Mode } from '../../config/types.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, type Command } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the sharder (SIGHUP reloads the configuration, SIGTERM stops gracefully; workers: N for all cores)',
  usage: `sharder serve [--config FILE] [--mode auth|proxy]\n${CONFIG_USAGE}\n  -m, --mode MODE     auth (answer nginx's auth_request) or proxy (forward to the hubs); overrides mode and SHARDER_MODE`,
  options: { ...CONFIG_OPTION, mode: { type: 'string', short: 'm' } },
  async run(args, io) {
    const mode = args.values.mode as string | undefined;
    if (mode !== undefined && !MODES.includes(mode as Mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}, got "${mode}"`);
    // --mode wins over the file and SHARDER_MODE, on start and on every reload.
    const env = mode === undefined ? io.env : { ...io.env, SHARDER_MODE: mode };
    const file = args.values.config as string | undefined;
    const config = loadConfig({ file, env });
    const log = createLogger(config.log.level, 1, config.log.format);
    // Under systemd (Type=notify) the unit becomes active only once the listener is up; with
    // workers, the primary says so for the group (workers never notify).
    const notifier = isClusterWorker() ? undefined : systemdNotifier(io.env, log);
    if (config.workers > 1 && !isClusterWorker()) {
      const code = await runPrimary(config, log, env, {
        ready: (what) => void notifier?.ready(what),
        stopping: () => void notifier?.stopping('stopping: finishing requests in flight'),
      });
      log.flush();
      return code;
    }
    const sharder = await Sharder.start(config, { log });
    void notifier?.ready(`listening on ${sharder.url}`);

    process.on('SIGHUP', () => {
      try {
        sharder.reload(loadConfig({ file: config.file ?? undefined, env }));
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [{ source: config.file, key: '(file)', message: String(err) }];
        log.error({ event: 'reload_rejected', problems }, 'new configuration rejected; the old one stays in force');
      }
    });
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ event: 'stopping', signal }, `${signal}: stopping`);
        void notifier?.stopping('stopping: finishing requests in flight');
        sharder.stop().then(resolve, resolve);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    log.flush();
    return EXIT_OK;
  },
};
