import { remove } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_OK, JSON_OPTION } from '../command.js';
import { SAFETY_AND_REASON, json, opCommand } from '../ops.js';

export const del = opCommand(remove, {
  summary: 'delete the assignment of NAME: its next request assigns it afresh by the policy',
  synopsis: 'sharder delete NAME [--stop-servers | --skip-hub-check] [--reason TEXT] [--kind KIND] [--json]',
  options: [CONFIG_OPTION, 'kind', ...SAFETY_AND_REASON, JSON_OPTION],
  print({ io, args }, r) {
    if (args.values.json) json(io, r);
    else io.out(`deleted ${r.name} (was on ${r.from}): its next request assigns it afresh\n`);
    return EXIT_OK;
  },
});
