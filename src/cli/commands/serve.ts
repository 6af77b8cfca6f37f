import { ConfigError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadConfig } from '../../config/load.js';
import { FLAG_ROWS } from '../../config/schema.js';
import { Sharder } from '../../server.js';
import { isClusterWorker, runPrimary } from '../../cluster.js';
import { systemdNotifier } from '../../service/systemd.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, type Command, type Options } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the sharder (SIGHUP reloads the configuration, SIGTERM stops gracefully; workers: N for all cores)',
  usage: [
    `sharder serve [--config FILE] ${FLAG_ROWS.map(({ flag }) => `[--${flag.name} ${flag.metavar}]`).join(' ')}`,
    CONFIG_USAGE,
    ...FLAG_ROWS.map(({ flag, path }) => {
      const names = `${flag.short === undefined ? '    ' : `-${flag.short}, `}--${flag.name} ${flag.metavar}`;
      return `  ${names.padEnd(26)}${flag.help} (key ${path})`;
    }),
    'Each of these flags wins over its SHARDER_* variable, which wins over the file, on start and on every reload.',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...Object.fromEntries(FLAG_ROWS.map(({ flag }) => [flag.name, flag.short === undefined ? { type: 'string' } : { type: 'string', short: flag.short }])) as Options },
  async run(args, io) {
    const flags = Object.fromEntries(FLAG_ROWS.map(({ flag }) => [flag.name, args.values[flag.name] as string | undefined]));
    const file = args.values.config as string | undefined;
    const load = (from = file) => loadConfig({ file: from, env: io.env, flags });
    const config = load();
    const log = createLogger(config.log.level, 1, config.log.format);
    // Under systemd (Type=notify) the unit becomes active only once the listener is up; with
    // workers, the primary says so for the group (workers never notify). Workers run this
    // same command line, flags included.
    const notifier = isClusterWorker() ? undefined : systemdNotifier(io.env, log);
    if (config.workers > 1 && !isClusterWorker()) {
      const code = await runPrimary(config, log, () => load(config.file ?? undefined), {
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
        sharder.reload(load(config.file ?? undefined));
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
