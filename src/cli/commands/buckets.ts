import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, json, str, table, withOps } from '../ops.js';

export const buckets: Command = {
  name: 'buckets',
  summary: 'list the buckets of a kind with state, weight, count and share',
  usage: `sharder buckets [--kind KIND] [--json]\n${CONFIG_USAGE}\n${KIND_USAGE}\n${JSON_USAGE}`,
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION },
  async run(args, io) {
    const config = configFrom(args, io);
    const view = await withOps(config, (ops) => ops.buckets(str(args, 'kind')));
    if (args.values.json) {
      json(io, view);
      return EXIT_OK;
    }
    const rows = [['BUCKET', 'STATE', 'WEIGHT', 'COUNT', 'SHARE']];
    for (const r of view.buckets) rows.push([r.name, r.in_config ? r.state : 'NOT IN CONFIG', String(r.weight), String(r.count), `${(r.share * 100).toFixed(1)}%`]);
    io.out(table(rows, [2, 3, 4]));
    io.out(`kind ${view.kind}: ${view.total} object${view.total === 1 ? '' : 's'}\n`);
    return EXIT_OK;
  },
};
