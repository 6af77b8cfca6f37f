/** `sharder COMMAND [options]`: dispatch to the command registry. */
import { EXIT_MEANINGS, EXIT_OK, EXIT_USAGE, parse, report, usage, type Io } from './command.js';
import { COMMANDS } from './commands/index.js';
import { VERSION } from '../version.js';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'sharder: assigns each user of a multi-hub JupyterHub deployment to one hub, permanently',
    '',
    'Usage: sharder COMMAND [options]     (sharder COMMAND --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show this help',
    '  -V, --version  print the version',
    '',
    `Exit status: ${EXIT_MEANINGS.map(([code, meaning]) => `${code} ${meaning}`).join(', ')}.`,
    '',
  ].join('\n');
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  stdout: process.stdout,
  stdin: process.stdin,
};

/**
 * Runs one command and resolves with its exit status; it never exits the process. Output,
 * input and the environment come through `io`, so the tests run the CLI in their own process
 * (test/helpers/sharder.ts `runCli`); `run.ts` is the process entry around it.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    io.out(`${VERSION}\n`);
    return EXIT_OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.err(`sharder: unknown command "${name}"\n\n${help()}`);
    return EXIT_USAGE;
  }
  try {
    const args = parse(cmd, rest);
    if (args.values.help) {
      io.out(`${cmd.summary}\n\nUsage: ${usage(cmd)}\n`);
      return EXIT_OK;
    }
    return await cmd.run(args, io);
  } catch (err) {
    return report(io, err);
  }
}
