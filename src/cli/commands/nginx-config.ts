import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { OutputError } from '../../errors.js';
import { renderNginxConfig } from '../../nginx/render.js';
import { KIND } from '../../ops/operations.js';
import { CONFIG_OPTION, EXIT_OK, configFrom, type Command } from '../command.js';
import { paramOption } from '../ops.js';

/**
 * Writes through a temporary file in the same directory and renames it into place, so that an
 * nginx reload running at the same moment reads the old file or the new one, never half of one.
 */
function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new OutputError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
    });
  }
}

export const nginxConfig: Command = {
  name: 'nginx-config',
  summary: 'render the nginx upstreams and bucket map from the configuration (see nginx/)',
  synopsis: 'sharder nginx-config [--config FILE] [--output FILE] [--kind KIND] [--sharder HOST:PORT]...',
  options: [
    CONFIG_OPTION,
    {
      flag: 'output',
      short: 'o',
      arg: 'FILE',
      type: 'path',
      doc: ['write here (atomically) instead of standard output,', 'e.g. /etc/nginx/sharder/sharder-upstreams.conf'],
    },
    paramOption(KIND)!,
    {
      flag: 'sharder',
      arg: 'HOST:PORT',
      multiple: true,
      column: 27,
      type: 'HOST:PORT, repeatable',
      doc: [
        'where nginx reaches the sharder (repeat for several instances;',
        'default: listen from the configuration)',
      ],
    },
  ],
  async run(args, io) {
    const config = configFrom(args, io);
    const { text, warnings } = renderNginxConfig(config, {
      kind: args.values.kind as string | undefined,
      sharders: args.values.sharder as unknown as string[] | undefined,
    });
    for (const w of warnings) io.err(`sharder: warning: ${w}\n`);
    const output = args.values.output as string | undefined;
    if (output === undefined) io.out(text);
    else {
      writeAtomically(output, text);
      io.err(`sharder: wrote ${output}; now run: nginx -t && nginx -s reload\n`);
    }
    return EXIT_OK;
  },
};
