import { ConfigError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadConfig } from '../../config/load.js';
import { Sharder } from '../../server.js';
import { systemdNotifier } from '../../service/systemd.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the sharder (SIGHUP reloads the configuration, SIGTERM stops gracefully)',
  usage: `sharder serve [--config FILE]\n${CONFIG_USAGE}`,
  options: CONFIG_OPTION,
  async run(args, io) {
    const config = configFrom(args, io);
    const log = createLogger(config.log.level);
    const sharder = await Sharder.start(config, { log });
    // Under systemd (Type=notify) the unit becomes active only now that the listener is up.
    const notifier = systemdNotifier(io.env, log);
    void notifier?.ready(`listening on ${sharder.url}`);

    process.on('SIGHUP', () => {
      try {
        sharder.reload(loadConfig({ file: config.file ?? undefined, env: io.env }));
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
