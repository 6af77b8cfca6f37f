import { CONFIG_OPTION, CONFIG_USAGE, configFrom, type Command } from '../command.js';
import { parseOriginalUrl } from '../../ops/index.js';
import { JSON_USAGE } from '../store.js';
import { JSON_OPTION, KIND_OPTION, REASON_OPTION, REASON_USAGE, cliActor, flag, onePositional, str, withOps } from '../ops.js';
import { IMPORT_KIND_USAGE, printImport } from './import.js';

export const importOriginal: Command = {
  name: 'import-original',
  summary: "import the original Python sharder's assignments (its shard table, SQLite or PostgreSQL)",
  usage: [
    'sharder import-original URL [--overwrite] [--reason TEXT] [--kind KIND] [--json]',
    CONFIG_USAGE,
    IMPORT_KIND_USAGE,
    '      --overwrite     put objects that are stored on another bucket on the original\'s bucket',
    REASON_USAGE,
    JSON_USAGE,
    'URL: postgres://USER:PASSWORD@HOST/DB (or the original\'s postgresql+psycopg2://...), sqlite:///relative.db,',
    '     sqlite:////absolute.db, or a file path. Its dummy-<bucket> placeholder rows are skipped.',
    'Give a password through PGPASSWORD or ~/.pgpass rather than the command line.',
  ].join('\n'),
  options: { ...CONFIG_OPTION, ...KIND_OPTION, ...JSON_OPTION, ...REASON_OPTION, overwrite: { type: 'boolean' } },
  positionals: true,
  async run(args, io) {
    const src = parseOriginalUrl(onePositional(args, 'URL', 'import-original'));
    const config = configFrom(args, io);
    const report = await withOps(config, (ops) => ops.importOriginal(src, { kind: str(args, 'kind'), overwrite: flag(args, 'overwrite'), actor: cliActor(io.env), reason: str(args, 'reason') }));
    return printImport(io, report, flag(args, 'json'));
  },
};
