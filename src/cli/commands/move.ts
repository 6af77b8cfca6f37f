import { move as moveOp } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_OK, JSON_OPTION } from '../command.js';
import { SAFETY_AND_REASON, json, opCommand } from '../ops.js';

export const move = opCommand(moveOp, {
  summary: 'move NAME to bucket B (asking its old hub about running servers first, when it has a hub_api)',
  synopsis: 'sharder move NAME --to B [--stop-servers | --skip-hub-check] [--reason TEXT] [--kind KIND] [--json]',
  options: [CONFIG_OPTION, 'kind', 'to', ...SAFETY_AND_REASON, JSON_OPTION],
  print({ io, args }, r) {
    if (args.values.json) json(io, r);
    else if (!r.changed) io.out(`${r.name} is already on ${r.to}: nothing to do\n`);
    else
      io.out(
        `moved ${r.name}: ${r.from} -> ` +
          `${r.to}${r.servers_stopped ? ` (its server on ${r.from} was stopped first)` : ''}\n`,
      );
    return EXIT_OK;
  },
});
