import type { DoctorReport } from '../../ops/index.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_FAILURE, EXIT_OK, configFrom, type Command, type Io } from '../command.js';
import { JSON_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, cliActor, flag, json, str, withOps } from '../ops.js';

function print(io: Io, r: DoctorReport): void {
  for (const c of r.checks) {
    io.out(`${c.status === 'ok' ? 'ok     ' : c.status === 'warning' ? 'WARNING' : 'ERROR  '}  ${c.check}: ${c.message}\n`);
    for (const d of c.details.slice(0, 20)) io.out(`           ${JSON.stringify(d)}\n`);
    if (c.details.length > 20) io.out(`           … and ${c.details.length - 20} more\n`);
  }
  io.out(r.ok ? `healthy (${r.warnings} warning${r.warnings === 1 ? '' : 's'})\n` : `${r.errors} problem${r.errors === 1 ? '' : 's'} found\n`);
}

export const doctor: Command = {
  name: 'doctor',
  summary: 'check the assignments: one row per object, counts, kinds and buckets against the configuration',
  usage: [
    'sharder doctor [--repair [--reason TEXT]] [--kind KIND] [--json]',
    CONFIG_USAGE,
    '  -k, --kind KIND     check only this kind (default: every kind, configured or stored)',
    '      --repair        set the counts the policy uses to the real numbers (audited), then check again',
    REASON_USAGE,
    JSON_USAGE,
    'Exit status 1 when an error remains; warnings alone exit 0.',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, repair: { type: 'boolean' } },
  async run(args, io) {
    const config = configFrom(args, io);
    const kind = str(args, 'kind');
    return withOps(config, async (ops) => {
      if (flag(args, 'repair')) {
        const r = await ops.repair({ actor: cliActor(io.env), reason: str(args, 'reason') }, kind);
        if (flag(args, 'json')) json(io, r);
        else {
          for (const f of r.repaired) io.out(`repaired count of ${f.kind}/${f.bucket}: ${f.kept} -> ${f.real}\n`);
          if (r.repaired.length === 0) io.out('no count needed repair\n');
          print(io, r.report);
        }
        return r.report.ok ? EXIT_OK : EXIT_FAILURE;
      }
      const r = await ops.doctor(kind);
      if (flag(args, 'json')) json(io, r);
      else print(io, r);
      return r.ok ? EXIT_OK : EXIT_FAILURE;
    });
  },
};
