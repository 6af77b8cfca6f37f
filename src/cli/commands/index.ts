import type { Command } from '../command.js';
import { assign } from './assign.js';
import { backup } from './backup.js';
import { buckets } from './buckets.js';
import { checkConfig } from './check-config.js';
import { serve } from './serve.js';

/** Every command, in the order `sharder --help` lists them. */
export const COMMANDS: readonly Command[] = [serve, checkConfig, assign, buckets, backup];
