import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, SAFETY_OPTIONS, SAFETY_USAGE, cliActor, json, onePositional, safety, str, withOps } from '../ops.js';

export const move: Command = {
  name: 'move',
  summary: 'move NAME to bucket B (asking its old hub about running servers first, when it has a hub_api)',
  usage: [
    'sharder move NAME --to B [--stop-servers | --skip-hub-check] [--reason TEXT] [--kind KIND] [--json]',
    CONFIG_USAGE,
    KIND_USAGE,
    '  -t, --to B          the bucket to move to (must be in the configuration)',
    SAFETY_USAGE,
    REASON_USAGE,
    JSON_USAGE,
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, ...SAFETY_OPTIONS, to: { type: 'string', short: 't' } },
  positionals: true,
  async run(args, io) {
    const name = onePositional(args, 'NAME', 'move');
    const to = str(args, 'to');
    if (to === undefined) throw new UsageError('move needs --to BUCKET');
    const config = configFrom(args, io);
    const r = await withOps(config, (ops) => ops.move({ kind: str(args, 'kind'), name, to, actor: cliActor(io.env), reason: str(args, 'reason'), ...safety(args) }));
    if (args.values.json) json(io, r);
    else if (!r.changed) io.out(`${r.name} is already on ${r.to}: nothing to do\n`);
    else io.out(`moved ${r.name}: ${r.from} -> ` + `${r.to}${r.servers_stopped ? ` (its server on ${r.from} was stopped first)` : ''}\n`);
    return EXIT_OK;
  },
};
