import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE, kindConfig, withStore } from '../store.js';

export const buckets: Command = {
  name: 'buckets',
  summary: 'list the buckets of a kind with state, weight, count and share',
  usage: `sharder buckets [--kind KIND] [--json]\n${CONFIG_USAGE}\n${KIND_USAGE}\n${JSON_USAGE}`,
  options: { ...CONFIG_OPTION, kind: { type: 'string', short: 'k' }, json: { type: 'boolean' } },
  async run(args, io) {
    const config = configFrom(args, io);
    const kind = kindConfig(config, args.values.kind as string | undefined);
    const counts = await withStore(config, (store) => store.counts(kind.name));
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const rows = kind.buckets.map((b) => ({ name: b.name, state: b.state, weight: b.weight, count: counts.get(b.name) ?? 0, in_config: true }));
    for (const [name, count] of counts) {
      if (!kind.buckets.some((b) => b.name === name)) rows.push({ name, state: 'unknown' as never, weight: 0, count, in_config: false });
    }
    const withShare = rows.map((r) => ({ ...r, share: total === 0 ? 0 : r.count / total }));
    if (args.values.json) {
      io.out(`${JSON.stringify({ kind: kind.name, total, buckets: withShare })}\n`);
      return EXIT_OK;
    }
    const table = [['BUCKET', 'STATE', 'WEIGHT', 'COUNT', 'SHARE']];
    for (const r of withShare) table.push([r.name, r.in_config ? r.state : 'NOT IN CONFIG', String(r.weight), String(r.count), `${(r.share * 100).toFixed(1)}%`]);
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    io.out(`${table.map((row) => row.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`);
    io.out(`kind ${kind.name}: ${total} object${total === 1 ? '' : 's'}\n`);
    return EXIT_OK;
  },
};
