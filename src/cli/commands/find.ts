import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, json, onePositional, str, withOps } from '../ops.js';
import { objectLines } from './users.js';

export const find: Command = {
  name: 'find',
  summary: 'print the bucket NAME is assigned to (exit 1 when it has none)',
  usage: `sharder find NAME [--kind KIND] [--json]\n${CONFIG_USAGE}\n${KIND_USAGE}\n${JSON_USAGE}`,
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION },
  positionals: true,
  async run(args, io) {
    const name = onePositional(args, 'NAME', 'find');
    const config = configFrom(args, io);
    const found = await withOps(config, (ops) => ops.find(str(args, 'kind'), name));
    if (args.values.json) json(io, found);
    else io.out(objectLines(config, found.kind, [found], true));
    return EXIT_OK;
  },
};
