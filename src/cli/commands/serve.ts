import { createLogger } from '../../log.js';
import { loadConfig } from '../../config/load.js';
import { FLAG_ROWS } from '../../config/schema.js';
import { serveProcess } from '../../process/serve.js';
import { CONFIG_OPTION, type Command } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the sharder (SIGHUP reloads the configuration, SIGTERM stops gracefully; workers: N for all cores)',
  synopsis: ['sharder serve [--config FILE]', ...FLAG_ROWS.map(({ flag }) => `[--${flag.name} ${flag.metavar}]`)].join(
    ' ',
  ),
  options: [
    CONFIG_OPTION,
    ...FLAG_ROWS.map((row) => ({
      flag: row.flag.name,
      short: row.flag.short,
      arg: row.flag.metavar,
      type: row.type,
      column: 28,
      doc: `${row.flag.help} (key ${row.path})`,
      default:
        row.defaultDoc ??
        (['string', 'number', 'boolean'].includes(typeof row.default)
          ? (row.default as string | number | boolean)
          : undefined),
    })),
  ],
  notes: [
    'Each of these flags wins over its SHARDER_* variable, which wins over the file, on start and on every reload.',
  ],
  exitFailure: 'the server could not start, or stopped on an error',
  async run(args, io) {
    const flags = Object.fromEntries(
      FLAG_ROWS.map(({ flag }) => [flag.name, args.values[flag.name] as string | undefined]),
    );
    const file = args.values.config as string | undefined;
    const load = (from = file) => loadConfig({ file: from, env: io.env, flags });
    const config = load();
    const log = createLogger(config.log.level, 1, config.log.format);
    const code = await serveProcess(config, { log, env: io.env, load: () => load(config.file ?? undefined) });
    log.flush();
    return code;
  },
};
