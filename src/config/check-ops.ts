/**
 * Validation of the operations sections: the control listener, admin tokens and each bucket's
 * JupyterHub API. Secrets (tokens) come from the config, a file (read by the loader) or the
 * environment and are never echoed in a message: problems name the key and say what is wrong,
 * not the value.
 */
import { createHash } from 'node:crypto';
import {
  NAME_PATTERN,
  type Problems,
  checkTokenText,
  describe,
  inlineSecret,
  isObject,
  listen,
  secretFile,
  unknownKeys,
} from './rules.js';
import {
  type AdminToken,
  type HubApiConfig,
  type ListenAddress,
  type RawConfig,
  DEFAULT_ADMIN_TOKEN_NAME,
  MIN_ADMIN_TOKEN_LENGTH,
} from './types.js';

export function controlListen(p: Problems, v: unknown): ListenAddress | null {
  if (v === null || v === 'off') return null;
  return listen(p, v, 'control_listen', p.keys.row('control_listen').default as string);
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
    const token = v.token !== undefined ? inlineSecret(p, v.token, key) : secretFile(p, v.token_file, key);
    if (token !== undefined && checkTokenText(p, token, key, MIN_ADMIN_TOKEN_LENGTH))
      found.push({ name: DEFAULT_ADMIN_TOKEN_NAME, token, key });
  }
  if (v.tokens !== undefined && v.tokens !== null) {
    if (!Array.isArray(v.tokens))
      p.add('admin.tokens', `must be a list of { name, token } or { name, token_file }, got ${describe(v.tokens)}`);
    else {
      v.tokens.forEach((entry: unknown, i: number) => {
        const key = `admin.tokens[${i}]`;
        if (!isObject(entry)) {
          p.add(
            key,
            'must be a mapping { name, token } or { name, token_file }, got ' +
              `${Array.isArray(entry) ? 'a list' : typeof entry}`,
          );
          return;
        }
        unknownKeys(p, entry, key, 'admin.tokens[]');
        let name = '';
        if (typeof entry.name !== 'string' || !NAME_PATTERN.test(entry.name))
          p.add(
            `${key}.name`,
            `must name who uses the token (1 to 63 letters, digits, ".", "_" or "-"), got ${describe(entry.name)}`,
          );
        else name = entry.name;
        if ((entry.token === undefined) === (entry.token_file === undefined)) {
          p.add(key, 'must have exactly one of token or token_file');
          return;
        }
        const tkey = entry.token !== undefined ? `${key}.token` : `${key}.token_file`;
        const token =
          entry.token !== undefined ? inlineSecret(p, entry.token, tkey) : secretFile(p, entry.token_file, tkey);
        if (name !== '' && token !== undefined && checkTokenText(p, token, tkey, MIN_ADMIN_TOKEN_LENGTH))
          found.push({ name, token, key: tkey });
      });
    }
  }
  const names = new Map<string, string>();
  const tokens = new Map<string, string>();
  for (const f of found) {
    const sameName = names.get(f.name);
    if (sameName !== undefined)
      p.add(
        f.key,
        `token name "${f.name}" is used twice (also ${sameName}): the audit log must be able to tell them apart`,
      );
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
  unknownKeys(p, v, key, 'kinds.*.buckets[].hub_api');
  let url: string | undefined;
  if (typeof v.url !== 'string')
    p.add(
      `${key}.url`,
      `must be the hub's http:// or https:// URL (with its base_url, if any), got ${describe(v.url)}`,
    );
  else {
    try {
      const u = new URL(v.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:')
        p.add(`${key}.url`, `must use http:// or https://, got ${describe(v.url)}`);
      else if (u.username || u.password)
        p.add(`${key}.url`, 'must not contain credentials: give the token in token, token_file or token_env');
      else if (u.search || u.hash) p.add(`${key}.url`, 'must not have a query or fragment');
      else url = v.url.replace(/\/+$/, '');
    } catch {
      p.add(`${key}.url`, `must be the hub's http:// or https:// URL, got ${describe(v.url)}`);
    }
  }
  const sources = ['token', 'token_file', 'token_env'].filter((k) => v[k] !== undefined);
  let token: string | undefined;
  if (sources.length !== 1) {
    p.add(
      key,
      'must have exactly one of token, token_file or token_env (a JupyterHub API token with the read:servers ' +
        `and servers scopes)${sources.length > 1 ? `, got ${sources.join(' and ')}` : ''}`,
    );
  } else if (sources[0] === 'token') {
    token = inlineSecret(p, v.token, `${key}.token`);
  } else if (sources[0] === 'token_file') {
    token = secretFile(p, v.token_file, `${key}.token_file`);
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
