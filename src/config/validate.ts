/**
 * Validation of raw configuration into `Config`: the secret files it names are read
 * (secrets.ts), then everything is checked purely (check.ts). Throws a ConfigError listing
 * every problem.
 */
import { checkConfig } from './check.js';
import type { EnvSources } from './rules.js';
import { readSecretFiles } from './secrets.js';
import type { Config } from './types.js';

/**
 * Validates raw configuration; throws ConfigError naming every problem. `env` says which keys
 * came from which variable or flag; `processEnv` is where secrets named by `token_env` are read.
 */
export function validateConfig(
  raw: unknown,
  file: string | null,
  env: EnvSources = new Map(),
  processEnv: NodeJS.ProcessEnv = process.env,
): Config {
  return checkConfig(raw, file, { sources: env, secretFiles: readSecretFiles(raw), processEnv });
}
