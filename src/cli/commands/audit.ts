import { audit as auditOp } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { json, opCommand, table } from '../ops.js';

export const audit = opCommand(auditOp, {
  summary: 'list the audit log (explicit assignments, moves, deletes, migrations, imports), newest first',
  synopsis:
    'sharder audit [--name NAME] [--action A] [--batch ID] [--since TIME] [--limit N] [--cursor C] [--kind ' +
    'KIND] [--json]',
  print({ io, args }, page) {
    if (args.values.json) {
      json(io, page);
      return EXIT_OK;
    }
    if (page.items.length === 0) io.err('no audit entries match\n');
    else {
      const rows = [['ID', 'AT', 'ACTOR', 'ACTION', 'KIND', 'FROM', 'TO', 'BATCH', 'NAME', 'REASON']];
      for (const e of page.items)
        rows.push([
          String(e.id),
          e.at,
          e.actor,
          e.action,
          e.kind,
          e.from ?? '-',
          e.to ?? '-',
          e.batch ?? '-',
          e.name ?? '-',
          e.reason ?? '',
        ]);
      io.out(table(rows, [0]));
    }
    if (page.next_cursor !== null) io.err(`next cursor: ${page.next_cursor}\n`);
    return EXIT_OK;
  },
});
