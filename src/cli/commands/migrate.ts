import { CONFIG_OPTION, CONFIG_USAGE, EXIT_FAILURE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import {
  JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, SAFETY_OPTIONS, SAFETY_USAGE, cliActor, emit, flag, intOption, json, onePositional,
  plural, safety, str, withOps,
} from '../ops.js';

function pauseOption(args: Parameters<Command['run']>[0]): number | undefined {
  const v = str(args, 'pause');
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw new UsageError(`--pause must be a whole number of milliseconds, got "${v}"`);
  return Number(v);
}

export const migrate: Command = {
  name: 'migrate',
  summary: 'move every object of bucket FROM to bucket --to B, or spread them over the other active buckets',
  usage: [
    'sharder migrate FROM [--to B] [--dry-run] [--batch-size N] [--stop-servers | --skip-hub-check] [--reason ' + 'TEXT] [--kind KIND] [--json]',
    CONFIG_USAGE,
    KIND_USAGE,
    '  -t, --to B          move everything to bucket B (default: spread by the policy over the other active buckets)',
    '  -n, --dry-run       print the plan (BUCKET NAME per object, then totals) and change nothing',
    '      --batch-size N  objects per transaction (default 1000); an interrupted migration resumes when run again',
    '      --pause MS      milliseconds between batches, so running servers get the write lock for new users ' + '(default 20)',
    SAFETY_USAGE,
    REASON_USAGE,
    JSON_USAGE,
    'FROM must be draining (or no longer configured), so that it receives no new objects meanwhile.',
    'Exit status 1 when some objects were skipped (listed; run again once they can move).',
  ].join('\n'),
  options: {
    ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, ...SAFETY_OPTIONS,
    to: { type: 'string', short: 't' }, 'dry-run': { type: 'boolean', short: 'n' }, 'batch-size': { type: 'string' }, pause: { type: 'string' },
  },
  positionals: true,
  async run(args, io) {
    const from = onePositional(args, 'bucket FROM', 'migrate');
    const config = configFrom(args, io);
    const dryRun = flag(args, 'dry-run');
    const asJson = flag(args, 'json');
    const r = await withOps(config, (ops) => ops.migrate({
      kind: str(args, 'kind'), from, to: str(args, 'to'), dryRun, batchSize: intOption(args, 'batch-size'), pauseMs: pauseOption(args),
      actor: cliActor(io.env), reason: str(args, 'reason'), ...safety(args),
      onBatch: async (b) => {
        if (asJson) return;
        if (dryRun) await emit(io, b.planned.map((p) => `${p.to}  ${p.name}\n`).join(''));
        else io.err(`batch ${b.batch} (${b.id}): moved ` + `${b.moved}${b.skipped.length > 0 ? `, skipped ${b.skipped.length}` : ''}\n`);
      },
    }));
    if (asJson) {
      json(io, r);
    } else {
      for (const w of r.warnings) io.err(`warning: ${w}\n`);
      const targets = Object.entries(r.targets).map(([b, n]) => `${b} ${n}`).join(', ') || 'none';
      if (r.dry_run) {
        io.out(`dry run: ${plural(r.planned, 'object')} of ${r.from} would move (${targets}); nothing was changed\n`);
      } else {
        for (const s of r.skipped) io.out(`skipped ${s.name}: ${s.reason}\n`);
        if (r.skipped_count > r.skipped.length) io.out(`… and ${r.skipped_count - r.skipped.length} more skipped\n`);
        io.out(`migrated ${r.from} (kind ${r.kind}): ${plural(r.moved, 'object')} moved in ` + `${plural(r.batches, 'batch')} (${targets}), ${r.skipped_count} skipped, ${r.remaining} left on ` + `${r.from}${r.batches > 0 ? `; audit batches ${r.id}/1..${r.batches}` : ''}\n`);
      }
    }
    return r.skipped_count > 0 ? EXIT_FAILURE : EXIT_OK;
  },
};
