/**
 * Loading: find the file, read it, parse YAML, apply SHARDER_* environment overrides and flags
 * (both derived from the schema), read the secret files it names, validate.
 * Every failure is a ConfigError that names the file (or variable) and the key.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { FLAG_ROWS, type KeyRow, type KeyType, SCHEMA } from './schema.js';
import { type Config, type RawConfig, DEFAULT_CONFIG_FILE } from './types.js';
import { validateConfig } from './validate.js';

/** A config file larger than this is refused before parsing (it is a few KiB in practice). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** How a SHARDER_* variable's text is read before checking, by the key's schema type. */
type EnvKind = 'string' | 'int' | 'bool' | 'list' | 'yaml';

function envKind(type: KeyType): EnvKind {
  switch (type) {
    case 'integer':
    case 'integer or auto':
      return 'int';
    case 'boolean':
      return 'bool';
    case 'list':
      return 'list';
    case 'mapping':
    case 'list of mappings':
      return 'yaml';
    default:
      return 'string';
  }
}

/**
 * SHARDER_ + the dotted path in upper case with `_` between parts (identity.trusted_proxies →
 * SHARDER_IDENTITY_TRUSTED_PROXIES).
 */
export const envName = (path: string): string => `SHARDER_${path.replaceAll('.', '_').toUpperCase()}`;

/** The variable that overrides a key, or null when none does (keys inside lists and named mappings). */
export function envVariable(row: KeyRow): string | null {
  if (row.env === false || /\*|\[\]/.test(row.path)) return null;
  return row.env ?? envName(row.path);
}

/** Every key that the environment may override: the schema's rows outside lists and named mappings. */
export const ENV_KEYS: ReadonlyArray<readonly [path: string, variable: string, kind: EnvKind]> = SCHEMA.flatMap((r) => {
  const variable = envVariable(r);
  return variable === null ? [] : [[r.path, variable, envKind(r.type)] as const];
});

/**
 * `sharder serve` flags that set a key (the schema rows with a `flag`), as configurable-http-proxy
 * and oauth2-proxy are started from a unit file without a configuration file. Precedence: a
 * flag over its SHARDER_* variable over the file. Their values are validated as the file's, and
 * a problem names the flag.
 */
export const FLAG_KEYS: ReadonlyArray<readonly [flag: string, path: string]> = FLAG_ROWS.map(
  (r) => [r.flag.name, r.path] as const,
);

function convert(kind: EnvKind, text: string): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'int':
      return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(text.trim())) return true;
      if (/^(false|0|no|off)$/i.test(text.trim())) return false;
      return text;
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'yaml':
      return parseYaml(text, 'environment');
  }
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        source,
        key: e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(document)',
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
      })),
    );
  }
  try {
    // maxAliasCount bounds "billion laughs" alias expansion.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([{ source, key: '(document)', message: `cannot be expanded: ${(err as Error).message}` }]);
  }
}

/** Reads and parses a YAML config file into raw (unvalidated) configuration. */
export function readConfigFile(file: string): RawConfig {
  let bytes: Buffer;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError([{ source: file, key: '(file)', message: 'is not a regular file' }]);
    if (st.size > MAX_CONFIG_BYTES)
      throw new ConfigError([
        {
          source: file,
          key: '(file)',
          message: `is ${st.size} bytes; a config file may be at most ${MAX_CONFIG_BYTES}`,
        },
      ]);
    bytes = readFileSync(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [
        {
          source: file,
          key: '(file)',
          message:
            code === 'ENOENT'
              ? 'does not exist: create it (see the shipped sharder.yml) or pass --config FILE'
              : `cannot be read (${code ?? String(err)})`,
        },
      ],
      { cause: err },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError([{ source: file, key: '(file)', message: 'is not valid UTF-8 text' }]);
  }
  const raw = parseYaml(text, file);
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ source: file, key: '(top level)', message: 'must be a mapping of keys to values' }]);
  }
  return raw as RawConfig;
}

function setPath(raw: RawConfig, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj: Record<string, unknown> = raw;
  for (const part of parts.slice(0, -1)) {
    const next = obj[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) obj[part] = {};
    obj = obj[part] as Record<string, unknown>;
  }
  obj[parts.at(-1)!] = value;
}

/** Applies SHARDER_* overrides in place; returns which keys came from which variable. */
export function applyEnv(raw: RawConfig, env: NodeJS.ProcessEnv): Map<string, string> {
  const sources = new Map<string, string>();
  for (const [path, name, kind] of ENV_KEYS) {
    const text = env[name];
    if (text === undefined) continue;
    setPath(raw, path, convert(kind, text));
    sources.set(path, name);
  }
  return sources;
}

/** Applies command-line flags (FLAG_KEYS) in place, after the environment; records them in `sources`. */
export function applyFlags(
  raw: RawConfig,
  flags: Readonly<Record<string, string | undefined>>,
  sources: Map<string, string>,
): void {
  for (const [flag, path] of FLAG_KEYS) {
    const value = flags[flag];
    if (value === undefined) continue;
    setPath(raw, path, value);
    sources.set(path, `--${flag}`);
  }
}

export interface LoadOptions {
  /** --config FILE; otherwise SHARDER_CONFIG, otherwise ./sharder.yml. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags by name (FLAG_KEYS), e.g. `{ listen: '0.0.0.0:8888' }`. */
  flags?: Readonly<Record<string, string | undefined>>;
}

export function configPath(opts: LoadOptions): string {
  const env = opts.env ?? process.env;
  return opts.file ?? env.SHARDER_CONFIG ?? DEFAULT_CONFIG_FILE;
}

/**
 * The configuration: the file, then SHARDER_* variables over it, then flags over those. A file
 * named by --config or SHARDER_CONFIG must exist; the default ./sharder.yml may be absent, so
 * that a unit file can start the sharder from variables and flags alone.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = configPath(opts);
  const withoutFile = opts.file === undefined && env.SHARDER_CONFIG === undefined && !existsSync(file);
  const raw = withoutFile ? {} : readConfigFile(file);
  const sources = applyEnv(raw, env);
  if (opts.flags !== undefined) applyFlags(raw, opts.flags, sources);
  try {
    return validateConfig(raw, withoutFile ? null : file, sources, env);
  } catch (err) {
    if (!withoutFile || !(err instanceof ConfigError)) throw err;
    const missing = {
      source: file,
      key: '(file)',
      message:
        'does not exist, so the configuration came from SHARDER_* variables and flags alone: create it (see ' +
        'the shipped sharder.yml), pass --config FILE, or set what is missing',
    };
    throw new ConfigError([missing, ...err.problems], { cause: err });
  }
}
