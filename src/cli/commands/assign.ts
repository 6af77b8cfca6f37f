import { assign as assignOp } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { json, opCommand } from '../ops.js';

export const assign = opCommand(assignOp, {
  summary: 'print the bucket of NAME, assigning it by the policy (or to --to B) if it has none',
  synopsis: 'sharder assign NAME [--to B [--reason TEXT]] [--kind KIND] [--json]',
  print({ io, args }, r) {
    if (args.values.json) json(io, r);
    else io.out(`${r.bucket}\n`);
    return EXIT_OK;
  },
});
