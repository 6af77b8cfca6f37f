import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { exportOp } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_OK, UsageError, type CliOption } from '../command.js';
import { emit, flag, opCommand, str } from '../ops.js';

const AS_JSONL: CliOption = { flag: 'json', type: 'boolean', default: false, doc: 'the same as --format jsonl' };
const OUTPUT: CliOption = {
  flag: 'output',
  short: 'o',
  arg: 'FILE',
  type: 'path',
  doc: 'write to FILE (complete or not at all) instead of standard output',
};

export const exportCommand = opCommand(exportOp, {
  summary: 'write every assignment as CSV or JSON lines (streamed), for backups and moving databases',
  synopsis: 'sharder export [--format csv|jsonl | --json] [--output FILE] [--kind KIND]',
  options: [CONFIG_OPTION, 'kind', 'format', AS_JSONL, OUTPUT],
  check(args) {
    if (flag(args, 'json') && str(args, 'format') !== undefined && str(args, 'format') !== 'jsonl')
      throw new UsageError('--json is --format jsonl: give one of them');
  },
  async run({ req, args, io, ops }) {
    const lines = exportOp.run(ops, { ...req, format: req.format ?? (flag(args, 'json') ? 'jsonl' : 'csv') });
    const output = str(args, 'output');
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
      return EXIT_OK;
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
    return EXIT_OK;
  },
});
