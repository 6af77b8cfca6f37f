/**
 * Validation of the operations sections: the control listener, admin tokens and each bucket's
 * JupyterHub API. Secrets (tokens) are read here from the config, a file or the environment
 * and never echoed in a message: problems name the key and say what is wrong, not the value.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  type AdminToken, type HubApiConfig, type ListenAddress, type RawConfig,
  DEFAULT_ADMIN_TOKEN_NAME, DEFAULT_CONTROL_LISTEN, MIN_ADMIN_TOKEN_LENGTH,
} from './types.js';
import { NAME_PATTERN, type Problems, describe, isObject, listen, unknownKeys } from './validate.js';

/** A token file larger than this is not a token. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;
const HUB_API_KEYS = ['url', 'token', 'token_file', 'token_env'];
const ADMIN_TOKEN_KEYS = ['name', 'token', 'token_file'];
const TOKEN_HINT = 'use a long random value, e.g. from `openssl rand -hex 32`';

export function controlListen(p: Problems, v: unknown): ListenAddress | null {
  if (v === null || v === 'off') return null;
  return listen(p, v, 'control_listen', DEFAULT_CONTROL_LISTEN);
}

/** Reads a secret from a file: trailing white space (the newline editors add) is dropped. */
export function readSecretFile(p: Problems, path: unknown, key: string): string | undefined {
  if (typeof path !== 'string' || path === '') {
    p.add(key, `must be the path of a file holding the token, got ${describe(path)}`);
    return undefined;
  }
  try {
    const st = statSync(path);
    if (!st.isFile()) {
      p.add(key, `"${path}" is not a regular file`);
      return undefined;
    }
    if (st.size > MAX_SECRET_FILE_BYTES) {
      p.add(key, `"${path}" is ${st.size} bytes: a token file holds only the token`);
      return undefined;
    }
    const text = readFileSync(path, 'utf8').trimEnd();
    if (text === '') p.add(key, `"${path}" is empty`);
    return text === '' ? undefined : text;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    p.add(key, `"${path}" cannot be read (${code === 'ENOENT' ? 'it does not exist' : code ?? 'error'})`);
    return undefined;
  }
}

/** A token given inline: checked for type and control characters without echoing it. */
export function inlineSecret(p: Problems, v: unknown, key: string): string | undefined {
  if (typeof v !== 'string' || v === '') {
    p.add(key, `must be a non-empty string${typeof v === 'string' ? '' : `, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`}`);
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

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export function adminSection(p: Problems, raw: RawConfig): { tokens: AdminToken[] } {
  const v = raw.admin;
  if (v === undefined || v === null) return { tokens: [] };
  if (!isObject(v)) {
    p.add('admin', `must be a mapping, got ${describe(v)}`);
    return { tokens: [] };
  }
  const found: { name: string; token: string; key: string }[] = [];
  if (v.token !== undefined && v.token_file !== undefined) {
    p.add('admin.token', 'give admin.token or admin.token_file, not both');
  } else if (v.token !== undefined || v.token_file !== undefined) {
    const key = v.token !== undefined ? 'admin.token' : 'admin.token_file';
    const token = v.token !== undefined ? inlineSecret(p, v.token, key) : readSecretFile(p, v.token_file, key);
    if (token !== undefined && checkTokenText(p, token, key, MIN_ADMIN_TOKEN_LENGTH)) found.push({ name: DEFAULT_ADMIN_TOKEN_NAME, token, key });
  }
  if (v.tokens !== undefined && v.tokens !== null) {
    if (!Array.isArray(v.tokens)) p.add('admin.tokens', `must be a list of { name, token } or { name, token_file }, got ${describe(v.tokens)}`);
    else {
      v.tokens.forEach((entry: unknown, i: number) => {
        const key = `admin.tokens[${i}]`;
        if (!isObject(entry)) {
          p.add(key, `must be a mapping { name, token } or { name, token_file }, got ${Array.isArray(entry) ? 'a list' : typeof entry}`);
          return;
        }
        unknownKeys(p, entry, key, ADMIN_TOKEN_KEYS);
        let name = '';
        if (typeof entry.name !== 'string' || !NAME_PATTERN.test(entry.name)) p.add(`${key}.name`, `must name who uses the token (1 to 63 letters, digits, ".", "_" or "-"), got ${describe(entry.name)}`);
        else name = entry.name;
        if ((entry.token === undefined) === (entry.token_file === undefined)) {
          p.add(key, 'must have exactly one of token or token_file');
          return;
        }
        const tkey = entry.token !== undefined ? `${key}.token` : `${key}.token_file`;
        const token = entry.token !== undefined ? inlineSecret(p, entry.token, tkey) : readSecretFile(p, entry.token_file, tkey);
        if (name !== '' && token !== undefined && checkTokenText(p, token, tkey, MIN_ADMIN_TOKEN_LENGTH)) found.push({ name, token, key: tkey });
      });
    }
  }
  const names = new Map<string, string>();
  const tokens = new Map<string, string>();
  for (const f of found) {
    const sameName = names.get(f.name);
    if (sameName !== undefined) p.add(f.key, `token name "${f.name}" is used twice (also ${sameName}): the audit log must be able to tell them apart`);
    const sameToken = tokens.get(f.token);
    if (sameToken !== undefined) p.add(f.key, `is the same token as ${sameToken}: give each user their own token`);
    names.set(f.name, f.key);
    tokens.set(f.token, f.key);
  }
  return { tokens: found.map((f) => ({ name: f.name, hash: sha256(f.token) })) };
}

/** `hub_api: { url, token | token_file | token_env }` of one bucket. */
export function hubApi(p: Problems, v: unknown, key: string): HubApiConfig | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) {
    p.add(key, `must be a mapping { url, token | token_file | token_env }, got ${describe(v)}`);
    return undefined;
  }
  unknownKeys(p, v, key, HUB_API_KEYS);
  let url: string | undefined;
  if (typeof v.url !== 'string') p.add(`${key}.url`, `must be the hub's http:// or https:// URL (with its base_url, if any), got ${describe(v.url)}`);
  else {
    try {
      const u = new URL(v.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') p.add(`${key}.url`, `must use http:// or https://, got ${describe(v.url)}`);
      else if (u.username || u.password) p.add(`${key}.url`, 'must not contain credentials: give the token in token, token_file or token_env');
      else if (u.search || u.hash) p.add(`${key}.url`, 'must not have a query or fragment');
      else url = v.url.replace(/\/+$/, '');
    } catch {
      p.add(`${key}.url`, `must be the hub's http:// or https:// URL, got ${describe(v.url)}`);
    }
  }
  const sources = ['token', 'token_file', 'token_env'].filter((k) => v[k] !== undefined);
  let token: string | undefined;
  if (sources.length !== 1) {
    p.add(key, `must have exactly one of token, token_file or token_env (a JupyterHub API token with the read:servers and servers scopes)${sources.length > 1 ? `, got ${sources.join(' and ')}` : ''}`);
  } else if (sources[0] === 'token') {
    token = inlineSecret(p, v.token, `${key}.token`);
  } else if (sources[0] === 'token_file') {
    token = readSecretFile(p, v.token_file, `${key}.token_file`);
  } else if (typeof v.token_env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.token_env)) {
    p.add(`${key}.token_env`, `must be the name of an environment variable, got ${describe(v.token_env)}`);
  } else {
    token = p.processEnv[v.token_env];
    if (token === undefined || token === '') {
      p.add(`${key}.token_env`, `names the environment variable ${v.token_env}, which is not set`);
      token = undefined;
    }
  }
  if (token !== undefined && !checkTokenText(p, token, `${key}.${sources[0]}`, 1)) token = undefined;
  if (url === undefined || token === undefined) return undefined;
  const out = { url } as HubApiConfig;
  // Non-enumerable, as pg-pool hides its password: JSON, logs and inspection never show it.
  Object.defineProperty(out, 'token', { value: token, enumerable: false });
  return Object.freeze(out);
}
