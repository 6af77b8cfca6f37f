import type { Command } from '../command.js';
import { assign } from './assign.js';
import { audit } from './audit.js';
import { backup } from './backup.js';
import { buckets } from './buckets.js';
import { checkConfig } from './check-config.js';
import { nginxConfig } from './nginx-config.js';
import { del } from './delete.js';
import { doctor } from './doctor.js';
import { exportCommand } from './export.js';
import { find } from './find.js';
import { importCommand } from './import.js';
import { importOriginal } from './import-original.js';
import { migrate } from './migrate.js';
import { move } from './move.js';
import { serve } from './serve.js';
import { users } from './users.js';

/** Every command, in the order `sharder --help` lists them. */
export const COMMANDS: readonly Command[] = [
  serve,
  checkConfig,
  assign,
  buckets,
  find,
  users,
  move,
  del,
  migrate,
  exportCommand,
  importCommand,
  importOriginal,
  doctor,
  audit,
  nginxConfig,
  backup,
];
