import { buckets as bucketsOp } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { json, opCommand, plural, table } from '../ops.js';

export const buckets = opCommand(bucketsOp, {
  summary: 'list the buckets of a kind with state, weight, count and share',
  synopsis: 'sharder buckets [--kind KIND] [--json]',
  print({ io, args }, view) {
    if (args.values.json) {
      json(io, view);
      return EXIT_OK;
    }
    const rows = [['BUCKET', 'STATE', 'WEIGHT', 'COUNT', 'SHARE']];
    for (const r of view.buckets)
      rows.push([
        r.name,
        r.in_config ? r.state : 'NOT IN CONFIG',
        String(r.weight),
        String(r.count),
        `${(r.share * 100).toFixed(1)}%`,
      ]);
    io.out(table(rows, [2, 3, 4]));
    io.out(`kind ${view.kind}: ${plural(view.total, 'object')}\n`);
    return EXIT_OK;
  },
});
