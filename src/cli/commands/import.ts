import type { ImportReport } from '../../ops/index.js';
import { importOp } from '../../ops/operations.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type Io } from '../command.js';
import { flag, json, opCommand, plural } from '../ops.js';

/** Prints an import report; exit status 1 when conflicts were left as they were. */
export function printImport(io: Io, r: ImportReport, asJson: boolean): number {
  if (asJson) json(io, r);
  else {
    for (const c of r.conflicts)
      io.out(
        `conflict: ${c.kind}/${c.name} is on ${c.existing}, the input says ${c.wanted} (left as it is; ` +
          '--overwrite replaces it)\n',
      );
    if (r.conflict_count > r.conflicts.length)
      io.out(`… and ${r.conflict_count - r.conflicts.length} more conflicts\n`);
    const extra = [
      r.other_kind > 0 ? `${r.other_kind} of other kinds skipped` : '',
      r.placeholders > 0 ? `${plural(r.placeholders, 'placeholder row')} (dummy-<bucket>) skipped` : '',
    ]
      .filter(Boolean)
      .join(', ');
    io.out(
      `imported ${r.source}: ${plural(r.rows, 'row')}, ${r.inserted} inserted, ${r.unchanged} unchanged, ` +
        `${r.overwritten} overwritten, ${plural(r.conflict_count, 'conflict')}${extra ? `, ${extra}` : ''}\n`,
    );
  }
  return r.conflict_count > 0 ? EXIT_FAILURE : EXIT_OK;
}

export const importCommand = opCommand(importOp, {
  summary: 'import assignments from a CSV or JSON lines file (idempotent; conflicts reported, not overwritten)',
  synopsis: 'sharder import FILE|- [--format csv|jsonl] [--overwrite] [--reason TEXT] [--kind KIND] [--json]',
  notes: ['Every row is checked first: one bad row and nothing is imported. Exit status 1 when conflicts were left.'],
  exitFailure: 'conflicts were left as they were, or the import failed',
  async run({ req, args, io, ops }) {
    if (req.file === '-' && !io.stdin) throw new UsageError('standard input is not available here');
    const report = await importOp.run(
      ops,
      req.file === '-' ? { ...req, input: io.stdin, source: 'standard input' } : req,
    );
    return printImport(io, report, flag(args, 'json'));
  },
});
