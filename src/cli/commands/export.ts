import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { FORMATS, type Format } from '../../ops/index.js';
import { JSON_OPTION, KIND_OPTION, emit, flag, str, withOps } from '../ops.js';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write every assignment as CSV or JSON lines (streamed), for backups and moving databases',
  usage: [
    'sharder export [--format csv|jsonl | --json] [--output FILE] [--kind KIND]',
    CONFIG_USAGE,
    '  -k, --kind KIND     only objects of this kind (default: every kind)',
    '  -f, --format F      csv (default: kind,name,bucket,assigned_at with a header) or jsonl',
    '      --json          the same as --format jsonl',
    '  -o, --output FILE   write to FILE (complete or not at all) instead of standard output',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, format: { type: 'string', short: 'f' }, output: { type: 'string', short: 'o' } },
  async run(args, io) {
    if (flag(args, 'json') && str(args, 'format') !== undefined && str(args, 'format') !== 'jsonl') throw new UsageError('--json is --format jsonl: give one of them');
    const format = (str(args, 'format') ?? (flag(args, 'json') ? 'jsonl' : 'csv')) as Format;
    if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
    const config = configFrom(args, io);
    const output = str(args, 'output');
    await withOps(config, async (ops) => {
      const lines = ops.export({ kind: str(args, 'kind'), format });
      if (output === undefined) {
        let chunk = '';
        for await (const line of lines) {
          chunk += line;
          if (chunk.length >= 65536) {
            await emit(io, chunk);
            chunk = '';
          }
        }
        await emit(io, chunk);
        return;
      }
      // Written beside the target and renamed at the end: a failed export leaves no file that
      // looks complete.
      const tmp = `${output}.partial-${process.pid}`;
      const out = createWriteStream(tmp, { mode: 0o600 });
      try {
        for await (const line of lines) if (!out.write(line)) await once(out, 'drain');
        out.end();
        await once(out, 'finish');
        await rename(tmp, output);
      } catch (err) {
        out.destroy();
        await rm(tmp, { force: true });
        throw err;
      }
    });
    return EXIT_OK;
  },
};
