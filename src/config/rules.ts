/**
 * The pieces every config check is built from: the problem list, value descriptions, unknown
 * keys, and checks of one value (number in range, header name, address, URL). Pure: no file and
 * no environment is read here. Defaults, ranges and known keys come from the schema rows that
 * `Problems` carries (src/config/schema.ts), so no check spells them again.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ConfigProblem } from '../errors.js';
import type { ListenAddress, RawConfig } from './types.js';

/**
 * What a check needs from the schema: a key's row (default, range, values) and the keys known
 * at a path. Given to `Problems` by the caller, so that checks need not import the schema (which
 * names them).
 */
export interface KeyTable {
  row(path: string): KeyLimits;
  /** The keys allowed in the mapping at `at` (a schema path such as `kinds.*.buckets[]`). */
  known(at: string): readonly string[];
}

/** The part of a schema row that checks read. */
export interface KeyLimits {
  readonly default: unknown;
  readonly range?: readonly [min: number, max: number];
  readonly values?: readonly string[];
  /** Words between "must be one of …" and ", got …", for values that need explaining. */
  readonly valuesHint?: string;
}

/** A secret file's text as the loader read it, or what went wrong (src/config/secrets.ts). */
export type SecretFileRead = { readonly text: string } | { readonly problem: string };

/**
 * Where each key's value came from, for messages: dotted key → the environment variable
 * (`SHARDER_LISTEN`) or command-line flag (`--listen`) that set it; keys not in it are the file's.
 */
export type EnvSources = ReadonlyMap<string, string>;

export interface CheckInputs {
  readonly keys: KeyTable;
  readonly sources: EnvSources;
  /** Secret files by the key that names them (`admin.tokens[0].token_file`), read by the loader. */
  readonly secretFiles: ReadonlyMap<string, SecretFileRead>;
  /** Where `token_env` secrets are read from. */
  readonly processEnv: NodeJS.ProcessEnv;
}

export class Problems {
  readonly list: ConfigProblem[] = [];
  readonly keys: KeyTable;
  readonly secretFiles: ReadonlyMap<string, SecretFileRead>;
  readonly processEnv: NodeJS.ProcessEnv;
  private readonly sources: EnvSources;

  constructor(
    private readonly file: string,
    inputs: CheckInputs,
  ) {
    this.keys = inputs.keys;
    this.sources = inputs.sources;
    this.secretFiles = inputs.secretFiles;
    this.processEnv = inputs.processEnv;
  }

  add(key: string, message: string): void {
    const from = this.sources.get(key) ?? this.sources.get(key.replace(/[.[].*$/, ''));
    if (from !== undefined)
      this.list.push({
        source: from.startsWith('--') ? 'command line' : 'environment',
        key: `${from} (${key})`,
        message,
      });
    else this.list.push({ source: this.file, key, message });
  }

  /** Whether a command-line flag set `key`. */
  fromFlag(key: string): boolean {
    return this.sources.get(key)?.startsWith('--') === true;
  }
}

/** Bucket and kind names appear in cookies, headers and rendered nginx config: keep them plain. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const NAME_RULE = 'use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit';
/** Upstream hosts: DNS names (with "_" for container names), IPv4, or a bracketed IPv6 literal. */
export const UPSTREAM_HOST = /^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])$/;
/** RFC 9110 token characters, for header and cookie names. */
export const TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const TOKEN_HINT = 'use a long random value, e.g. from `openssl rand -hex 32`';

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/**
 * Reports every key of `v` that the schema does not know at `schemaPath`, each naming its full
 * path (`at` is the mapping's own path, or null at the top level). The one place that decides
 * what is unknown: own keys only, so `toString` or `__proto__` is as unknown as a typo.
 */
export function unknownKeys(p: Problems, v: Record<string, unknown>, at: string | null, schemaPath: string): void {
  const known = p.keys.known(schemaPath);
  for (const k of Object.keys(v)) {
    if (known.includes(k)) continue;
    const name = k === '' ? '"" (an empty key)' : k;
    p.add(at === null ? name : `${at}.${name}`, `unknown key (known: ${known.join(', ')})`);
  }
}

export function section(p: Problems, raw: RawConfig, key: string): Record<string, unknown> {
  const v = raw[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) {
    p.add(key, `must be a mapping, got ${describe(v)}`);
    return {};
  }
  return v;
}

export function str(p: Problems, v: unknown, key: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v === '') {
    p.add(key, `must be a non-empty string, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

/** A string key with its schema default. */
export const strKey = (p: Problems, v: unknown, key: string): string =>
  str(p, v, key, p.keys.row(key).default as string);

/** A whole number within the schema row's range (`row` when `key` is one entry of a list or map). */
export function intKey(p: Problems, v: unknown, key: string, row = key): number {
  const r = p.keys.row(row);
  const [min, max] = r.range!;
  if (v === undefined) return r.default as number;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    p.add(key, `must be a whole number from ${min} to ${max}, got ${describe(v)}`);
    return r.default as number;
  }
  return v;
}

export function boolKey(p: Problems, v: unknown, key: string): boolean {
  const dflt = p.keys.row(key).default as boolean;
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    p.add(key, `must be true or false, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

/** One of the schema row's values. */
export function enumKey<T extends string>(p: Problems, v: unknown, key: string, row = key): T {
  const r = p.keys.row(row);
  if (v === undefined) return r.default as T;
  if (!r.values!.includes(v as string)) {
    p.add(
      key,
      `must be one of ${r.values!.join(', ')}${r.valuesHint === undefined ? '' : ` ${r.valuesHint}`}, got ` +
        `${describe(v)}`,
    );
    return r.default as T;
  }
  return v as T;
}

/** A file name that may be absent (null or missing: null). */
export function optionalPath(p: Problems, v: unknown, key: string): string | null {
  return v === undefined || v === null ? null : str(p, v, key, '') || null;
}

export function stringList(p: Problems, v: unknown, key: string, dflt: readonly string[]): readonly string[] {
  if (v === undefined) return dflt;
  if (!Array.isArray(v)) {
    p.add(key, `must be a list, got ${describe(v)}`);
    return dflt;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    if (typeof item !== 'string') p.add(`${key}[${i}]`, `must be a string, got ${describe(item)}`);
    else out.push(item);
  });
  return out;
}

export function parseListen(text: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (!m) return 'must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port number';
  const host = m[1] || m[2] || '127.0.0.1';
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  if (m[1] && !isIPv6(host)) return `"${host}" is not an IPv6 address`;
  if (!m[1] && !isIPv4(host) && !/^[A-Za-z0-9.-]+$/.test(host)) return `"${host}" is not a host name or IPv4 address`;
  return { host, port };
}

export function listen(p: Problems, v: unknown, key: string, dflt: string): ListenAddress {
  const text = v === undefined ? dflt : typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string') {
    p.add(key, `must be HOST:PORT, got ${describe(v)}`);
    return parseListen(dflt) as ListenAddress;
  }
  const r = parseListen(text);
  if (typeof r === 'string') {
    p.add(key, `${r}, got ${describe(text)}`);
    return parseListen(dflt) as ListenAddress;
  }
  return r;
}

/** Accepts an address or a CIDR; returns an error text or undefined. */
export function checkCidr(text: string): string | undefined {
  const [addr, prefix, ...rest] = text.split('/');
  const v4 = isIPv4(addr ?? '');
  if (rest.length > 0 || (!v4 && !isIPv6(addr ?? ''))) return `"${text}" is not an IP address or CIDR range`;
  if (prefix !== undefined) {
    const n = Number(prefix);
    if (!/^\d{1,3}$/.test(prefix) || n > (v4 ? 32 : 128)) return `"${text}" has an invalid prefix length`;
  }
  return undefined;
}

/**
 * Whether a URL (or URL template) can be written into a response header as it is: printable
 * ASCII without spaces. The WHATWG URL parser silently drops tabs and newlines and accepts
 * non-ASCII hosts, so `new URL()` succeeding says nothing about the bytes Node will write
 * (`X-Shard-Upstream`, `Location`); a value that fails here would throw on the first request.
 */
export function headerSafeUrl(p: Problems, key: string, text: string): boolean {
  if (/^[\x21-\x7e]+$/.test(text)) return true;
  if (/[\x00-\x20\x7f]/.test(text)) {
    p.add(
      key,
      `must not contain white space or control characters (it is sent in a response header), got ${describe(text)}`,
    );
    return false;
  }
  let hint = '';
  if (text.includes('://')) {
    try {
      const host = new URL(text.replaceAll(/\{\w+\}/g, 'x')).host;
      if (/^[\x21-\x7e]+$/.test(host)) hint = `: write the host in its ASCII form, ${host}`;
    } catch {
      /* no hint */
    }
  }
  p.add(key, `must be ASCII (it is sent in a response header)${hint}, got ${describe(text)}`);
  return false;
}

/**
 * A secret named by a `*_file` key: the text the loader read for `key`. Trailing white space
 * (the newline editors add) was dropped there.
 */
export function secretFile(p: Problems, path: unknown, key: string): string | undefined {
  if (typeof path !== 'string' || path === '') {
    p.add(key, `must be the path of a file holding the token, got ${describe(path)}`);
    return undefined;
  }
  const read = p.secretFiles.get(key);
  if (read === undefined)
    throw new Error(`${key}: the loader did not read this secret file (schema row type 'secret file' missing?)`);
  if ('problem' in read) {
    p.add(key, read.problem);
    return undefined;
  }
  return read.text;
}

/** A token given inline: checked for type and control characters without echoing it. */
export function inlineSecret(p: Problems, v: unknown, key: string): string | undefined {
  if (typeof v !== 'string' || v === '') {
    p.add(
      key,
      'must be a non-empty ' +
        `string${typeof v === 'string' ? '' : `, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`}`,
    );
    return undefined;
  }
  return v;
}

/** Tokens travel in an HTTP header: printable ASCII only. */
export function checkTokenText(p: Problems, token: string, key: string, minLength: number): boolean {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    p.add(key, 'must be printable ASCII with no spaces (it is sent in an HTTP header)');
    return false;
  }
  if (token.length < minLength) {
    p.add(key, `is shorter than ${minLength} characters: ${TOKEN_HINT}`);
    return false;
  }
  return true;
}
