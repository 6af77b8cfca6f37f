import { BadInputError } from '../../errors.js';
import { checkName } from '../../http/identity.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { JSON_USAGE, KIND_USAGE, kindConfig, withStore } from '../store.js';

export const assign: Command = {
  name: 'assign',
  summary: 'print the bucket of NAME, assigning it by the policy if it has none',
  usage: `sharder assign NAME [--kind KIND] [--json]\n${CONFIG_USAGE}\n${KIND_USAGE}\n${JSON_USAGE}`,
  options: { ...CONFIG_OPTION, kind: { type: 'string', short: 'k' }, json: { type: 'boolean' } },
  positionals: true,
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('assign takes exactly one NAME');
    const config = configFrom(args, io);
    const kind = kindConfig(config, args.values.kind as string | undefined);
    // The same rules as names from the identity header; the CLI gets proper UTF-8 already.
    const raw = args.positionals[0]!;
    const checked = checkName(Buffer.from(raw, 'utf8').toString('latin1'), config.identity.maxLength);
    if (typeof checked !== 'string') throw new BadInputError(`invalid name: ${checked.message}`);
    const result = await withStore(config, (store) => store.assign(kind.name, checked, kind.buckets));
    if (args.values.json) io.out(`${JSON.stringify({ kind: kind.name, name: checked, bucket: result.bucket, created: result.created })}\n`);
    else io.out(`${result.bucket}\n`);
    return EXIT_OK;
  },
};
