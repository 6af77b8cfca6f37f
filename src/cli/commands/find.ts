import { find as findOp } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { json, opCommand } from '../ops.js';
import { objectLines } from './users.js';

export const find = opCommand(findOp, {
  summary: 'print the bucket NAME is assigned to (exit 1 when it has none)',
  synopsis: 'sharder find NAME [--kind KIND] [--json]',
  exitFailure: 'NAME has no assignment, or the store is unavailable',
  print({ io, args, config }, found) {
    if (args.values.json) json(io, found);
    else io.out(objectLines(config, found.kind, [found], true));
    return EXIT_OK;
  },
});
