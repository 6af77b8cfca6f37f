import { migrate as migrateOp } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_FAILURE, EXIT_OK, JSON_OPTION } from '../command.js';
import { SAFETY_AND_REASON, emit, flag, json, opCommand, plural } from '../ops.js';

export const migrate = opCommand(migrateOp, {
  summary: 'move every object of bucket FROM to bucket --to B, or spread them over the other active buckets',
  synopsis:
    'sharder migrate FROM [--to B] [--dry-run] [--batch-size N] [--stop-servers | --skip-hub-check] [--reason ' +
    'TEXT] [--kind KIND] [--json]',
  options: [CONFIG_OPTION, 'kind', 'to', 'dryRun', 'batchSize', 'pauseMs', ...SAFETY_AND_REASON, JSON_OPTION],
  notes: [
    'FROM must be draining (or no longer configured), so that it receives no new objects meanwhile.',
    'Exit status 1 when some objects were skipped (listed; run again once they can move).',
  ],
  exitFailure: 'some objects were skipped (listed; run again once they can move), or the migration failed',
  async run({ req, args, io, ops }) {
    const dryRun = req.dryRun === true;
    const asJson = flag(args, 'json');
    const r = await migrateOp.run(ops, {
      ...req,
      dryRun,
      onBatch: async (b) => {
        if (asJson) return;
        if (dryRun) await emit(io, b.planned.map((p) => `${p.to}  ${p.name}\n`).join(''));
        else
          io.err(
            `batch ${b.batch} (${b.id}): moved ` +
              `${b.moved}${b.skipped.length > 0 ? `, skipped ${b.skipped.length}` : ''}\n`,
          );
      },
    });
    if (asJson) {
      json(io, r);
    } else {
      for (const w of r.warnings) io.err(`warning: ${w}\n`);
      const targets =
        Object.entries(r.targets)
          .map(([b, n]) => `${b} ${n}`)
          .join(', ') || 'none';
      if (r.dry_run) {
        io.out(`dry run: ${plural(r.planned, 'object')} of ${r.from} would move (${targets}); nothing was changed\n`);
      } else {
        for (const s of r.skipped) io.out(`skipped ${s.name}: ${s.reason}\n`);
        if (r.skipped_count > r.skipped.length) io.out(`… and ${r.skipped_count - r.skipped.length} more skipped\n`);
        io.out(
          `migrated ${r.from} (kind ${r.kind}): ${plural(r.moved, 'object')} moved in ` +
            `${plural(r.batches, 'batch')} (${targets}), ${r.skipped_count} skipped, ${r.remaining} left on ` +
            `${r.from}${r.batches > 0 ? `; audit batches ${r.id}/1..${r.batches}` : ''}\n`,
        );
      }
    }
    return r.skipped_count > 0 ? EXIT_FAILURE : EXIT_OK;
  },
});
