import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, intOption, json, str, table, withOps } from '../ops.js';

export const audit: Command = {
  name: 'audit',
  summary: 'list the audit log (explicit assignments, moves, deletes, migrations, imports), newest first',
  usage: [
    'sharder audit [--name NAME] [--action A] [--batch ID] [--since TIME] [--limit N] [--cursor C] [--kind ' + 'KIND] [--json]',
    CONFIG_USAGE,
    '  -k, --kind KIND     only entries of this kind (default: every kind)',
    '      --name NAME     only entries about this object',
    '      --action A      assign, move, delete, migrate, import or repair',
    '      --batch ID      one migration or import batch (as printed by migrate)',
    '      --since TIME    only entries at or after TIME (ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00:00Z)',
    '      --limit N       entries per page (default 50, at most 1000)',
    '      --cursor C      the page after the one that printed "next cursor: C"',
    JSON_USAGE,
  ].join('\n'),
  options: {
    ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION,
    name: { type: 'string' }, action: { type: 'string' }, batch: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' },
  },
  async run(args, io) {
    const config = configFrom(args, io);
    const page = await withOps(config, (ops) => ops.audit({
      kind: str(args, 'kind'), name: str(args, 'name'), action: str(args, 'action'), batch: str(args, 'batch'),
      since: str(args, 'since'), limit: intOption(args, 'limit'), cursor: str(args, 'cursor'),
    }));
    if (args.values.json) {
      json(io, page);
      return EXIT_OK;
    }
    if (page.items.length === 0) io.err('no audit entries match\n');
    else {
      const rows = [['ID', 'AT', 'ACTOR', 'ACTION', 'KIND', 'FROM', 'TO', 'BATCH', 'NAME', 'REASON']];
      for (const e of page.items) rows.push([String(e.id), e.at, e.actor, e.action, e.kind, e.from ?? '-', e.to ?? '-', e.batch ?? '-', e.name ?? '-', e.reason ?? '']);
      io.out(table(rows, [0]));
    }
    if (page.next_cursor !== null) io.err(`next cursor: ${page.next_cursor}\n`);
    return EXIT_OK;
  },
};
