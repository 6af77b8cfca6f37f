import { CONFIG_OPTION, EXIT_OK, configFrom, type Command } from '../command.js';

export const checkConfig: Command = {
  name: 'check-config',
  summary: 'validate the configuration and exit (status 2 and every problem listed when invalid)',
  synopsis: 'sharder check-config [--config FILE]',
  options: [CONFIG_OPTION],
  exitFailure: 'not used: an invalid configuration exits 2, every problem listed',
  async run(args, io) {
    const config = configFrom(args, io);
    const buckets = [...config.kinds.values()].map(
      (k) => `${k.name}: ${k.buckets.length} bucket${k.buckets.length === 1 ? '' : 's'}`,
    );
    io.out(`${config.file ?? 'configuration (environment and flags, no file)'}: OK (${buckets.join('; ')})\n`);
    return EXIT_OK;
  },
};
