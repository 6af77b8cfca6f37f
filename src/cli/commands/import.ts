import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ImportReport } from '../../ops/index.js';
import { FORMATS, type Format } from '../../ops/index.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_FAILURE, EXIT_OK, UsageError, configFrom, type Command, type Io } from '../command.js';
import { JSON_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, cliActor, flag, json, onePositional, plural, str, withOps } from '../ops.js';

export const IMPORT_KIND_USAGE = '  -k, --kind KIND     import only rows of this kind (rows without a kind count as it); default: all rows, ' + 'rows without a kind as default_kind';

/** Prints an import report; exit status 1 when conflicts were left as they were. */
export function printImport(io: Io, r: ImportReport, asJson: boolean): number {
  if (asJson) json(io, r);
  else {
    for (const c of r.conflicts) io.out(`conflict: ${c.kind}/${c.name} is on ${c.existing}, the input says ${c.wanted} (left as it is; ` + '--overwrite replaces it)\n');
    if (r.conflict_count > r.conflicts.length) io.out(`… and ${r.conflict_count - r.conflicts.length} more conflicts\n`);
    const extra = [
      r.other_kind > 0 ? `${r.other_kind} of other kinds skipped` : '',
      r.placeholders > 0 ? `${plural(r.placeholders, 'placeholder row')} (dummy-<bucket>) skipped` : '',
    ].filter(Boolean).join(', ');
    io.out(`imported ${r.source}: ${plural(r.rows, 'row')}, ${r.inserted} inserted, ${r.unchanged} unchanged, ` + `${r.overwritten} overwritten, ${plural(r.conflict_count, 'conflict')}${extra ? `, ${extra}` : ''}\n`);
  }
  return r.conflict_count > 0 ? EXIT_FAILURE : EXIT_OK;
}

export const importCommand: Command = {
  name: 'import',
  summary: 'import assignments from a CSV or JSON lines file (idempotent; conflicts reported, not overwritten)',
  usage: [
    'sharder import FILE|- [--format csv|jsonl] [--overwrite] [--reason TEXT] [--kind KIND] [--json]',
    CONFIG_USAGE,
    IMPORT_KIND_USAGE,
    '  -f, --format F      csv or jsonl (default: from the file name, else from the first line)',
    '      --overwrite     put objects that are stored on another bucket on the file\'s bucket',
    REASON_USAGE,
    JSON_USAGE,
    'Every row is checked first: one bad row and nothing is imported. Exit status 1 when conflicts were left.',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, format: { type: 'string', short: 'f' }, overwrite: { type: 'boolean' } },
  positionals: true,
  async run(args, io) {
    const file = onePositional(args, 'FILE (or - for standard input)', 'import');
    const format = str(args, 'format') as Format | undefined;
    if (format !== undefined && !FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
    const config = configFrom(args, io);
    const opts = { format, kind: str(args, 'kind'), overwrite: flag(args, 'overwrite'), actor: cliActor(io.env), reason: str(args, 'reason') };
    let report: ImportReport;
    if (file === '-') {
      // Standard input is read twice (check, then import): spool it to a private file first.
      if (!io.stdin) throw new UsageError('standard input is not available here');
      const dir = await mkdtemp(join(tmpdir(), 'sharder-import-'));
      try {
        const path = join(dir, 'stdin');
        await pipeline(io.stdin, createWriteStream(path, { mode: 0o600 }));
        report = await withOps(config, (ops) => ops.importFile(path, { ...opts, source: 'standard input' }));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } else {
      report = await withOps(config, (ops) => ops.importFile(file, opts));
    }
    return printImport(io, report, flag(args, 'json'));
  },
};
