import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, cliActor, json, onePositional, str, withOps } from '../ops.js';
import { checkObjectName, configuredKind } from '../../ops/context.js';

export const assign: Command = {
  name: 'assign',
  summary: 'print the bucket of NAME, assigning it by the policy (or to --to B) if it has none',
  usage: [
    'sharder assign NAME [--to B [--reason TEXT]] [--kind KIND] [--json]',
    CONFIG_USAGE,
    KIND_USAGE,
    '  -t, --to B          assign to bucket B instead of by the policy (audited; refused if NAME has another bucket)',
    REASON_USAGE,
    JSON_USAGE,
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, to: { type: 'string', short: 't' } },
  positionals: true,
  async run(args, io) {
    const raw = onePositional(args, 'NAME', 'assign');
    const config = configFrom(args, io);
    const to = str(args, 'to');
    const out = await withOps(config, async (ops) => {
      if (to !== undefined) {
        const r = await ops.assign({ kind: str(args, 'kind'), name: raw, bucket: to, actor: cliActor(io.env), reason: str(args, 'reason') });
        return { kind: r.kind, name: r.name, bucket: r.to!, created: r.changed };
      }
      // By the policy, exactly as a first request would (not audited: it is not an operator's choice).
      const kind = configuredKind(ops.ctx, str(args, 'kind'));
      const name = checkObjectName(ops.ctx, raw);
      const r = await ops.ctx.store.assign(kind.name, name, kind.buckets);
      return { kind: kind.name, name, bucket: r.bucket, created: r.created };
    });
    if (args.values.json) json(io, out);
    else io.out(`${out.bucket}\n`);
    return EXIT_OK;
  },
};
