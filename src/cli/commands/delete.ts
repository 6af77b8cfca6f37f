import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, SAFETY_OPTIONS, SAFETY_USAGE, cliActor, json, onePositional, safety, str, withOps } from '../ops.js';

export const del: Command = {
  name: 'delete',
  summary: 'delete the assignment of NAME: its next request assigns it afresh by the policy',
  usage: [
    'sharder delete NAME [--stop-servers | --skip-hub-check] [--reason TEXT] [--kind KIND] [--json]',
    CONFIG_USAGE,
    KIND_USAGE,
    SAFETY_USAGE,
    REASON_USAGE,
    JSON_USAGE,
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, ...SAFETY_OPTIONS },
  positionals: true,
  async run(args, io) {
    const name = onePositional(args, 'NAME', 'delete');
    const config = configFrom(args, io);
    const r = await withOps(config, (ops) => ops.delete({ kind: str(args, 'kind'), name, actor: cliActor(io.env), reason: str(args, 'reason'), ...safety(args) }));
    if (args.values.json) json(io, r);
    else io.out(`deleted ${r.name} (was on ${r.from}): its next request assigns it afresh\n`);
    return EXIT_OK;
  },
};
