import { createLogger } from '../../log.js';
import { loadConfig } from '../../config/load.js';
import { FLAG_ROWS } from '../../config/schema.js';
import { serveProcess } from '../../process/serve.js';
import { CONFIG_OPTION, CONFIG_USAGE, type Command, type Options } from '../command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'run the sharder (SIGHUP reloads the configuration, SIGTERM stops gracefully; workers: N for all cores)',
  usage: [
    `sharder serve [--config FILE] ${FLAG_ROWS.map(({ flag }) => `[--${flag.name} ${flag.metavar}]`).join(' ')}`,
    CONFIG_USAGE,
    ...FLAG_ROWS.map(({ flag, path }) => `  ${`${flag.short === undefined ? '    ' : `-${flag.short}, `}--${flag.name} ${flag.metavar}`.padEnd(26)}${flag.help} (key ${path})`),
    'Each of these flags wins over its SHARDER_* variable, which wins over the file, on start and on every reload.',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...Object.fromEntries(FLAG_ROWS.map(({ flag }) => [flag.name, flag.short === undefined ? { type: 'string' } : { type: 'string', short: flag.short }])) as Options },
  async run(args, io) {
    const flags = Object.fromEntries(FLAG_ROWS.map(({ flag }) => [flag.name, args.values[flag.name] as string | undefined]));
    const file = args.values.config as string | undefined;
    const load = (from = file) => loadConfig({ file: from, env: io.env, flags });
    const config = load();
    const log = createLogger(config.log.level, 1, config.log.format);
    const code = await serveProcess(config, { log, env: io.env, load: () => load(config.file ?? undefined) });
    log.flush();
    return code;
  },
};
