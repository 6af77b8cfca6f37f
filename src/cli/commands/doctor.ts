import type { DoctorReport } from '../../ops/index.js';
import { doctor as doctorOp, repair } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_FAILURE, EXIT_OK, JSON_OPTION, type CliOption, type Io } from '../command.js';
import { flag, json, opCommand } from '../ops.js';

function print(io: Io, r: DoctorReport): void {
  for (const c of r.checks) {
    io.out(
      `${c.status === 'ok' ? 'ok     ' : c.status === 'warning' ? 'WARNING' : 'ERROR  '}  ${c.check}: ${c.message}\n`,
    );
    for (const d of c.details.slice(0, 20)) io.out(`           ${JSON.stringify(d)}\n`);
    if (c.details.length > 20) io.out(`           … and ${c.details.length - 20} more\n`);
  }
  io.out(
    r.ok
      ? `healthy (${r.warnings} warning${r.warnings === 1 ? '' : 's'})\n`
      : `${r.errors} problem${r.errors === 1 ? '' : 's'} found\n`,
  );
}

const REPAIR: CliOption = {
  flag: 'repair',
  type: 'boolean',
  default: false,
  doc: 'set the counts the policy uses to the real numbers (audited), then check again',
};

/** The check, or with --repair the repair (whose parameters are the check's and a reason). */
export const doctor = opCommand(repair, {
  name: 'doctor',
  summary: 'check the assignments: one row per object, counts, kinds and buckets against the configuration',
  synopsis: 'sharder doctor [--repair [--reason TEXT]] [--kind KIND] [--json]',
  options: [CONFIG_OPTION, 'kind', REPAIR, 'reason', JSON_OPTION],
  notes: ['Exit status 1 when an error remains; warnings alone exit 0.'],
  exitFailure: 'an error remains (warnings alone exit 0), or the check failed',
  async run({ req, args, io, ops }) {
    if (flag(args, 'repair')) {
      const r = await repair.run(ops, req);
      if (flag(args, 'json')) json(io, r);
      else {
        for (const f of r.repaired) io.out(`repaired count of ${f.kind}/${f.bucket}: ${f.kept} -> ${f.real}\n`);
        if (r.repaired.length === 0) io.out('no count needed repair\n');
        print(io, r.report);
      }
      return r.report.ok ? EXIT_OK : EXIT_FAILURE;
    }
    const r = await doctorOp.run(ops, req);
    if (flag(args, 'json')) json(io, r);
    else print(io, r);
    return r.ok ? EXIT_OK : EXIT_FAILURE;
  },
});
