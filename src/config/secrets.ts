/**
 * Reading the secret files a configuration names (`token_file`, `secret_file`: rows of type
 * 'secret file' in the schema), before it is checked, so that the checks stay pure and a
 * missing file is reported with every other problem. Trailing white space (the newline editors
 * add) is dropped; a file's text is never echoed in a message.
 */
import { readFileSync, statSync } from 'node:fs';
import { isObject, type SecretFileRead } from './rules.js';
import { SCHEMA } from './schema.js';

/** A token file larger than this is not a token. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

const SECRET_FILE_PATHS = SCHEMA.filter((r) => r.type === 'secret file').map((r) => r.path);

function readSecretFile(path: string): SecretFileRead {
  try {
    const st = statSync(path);
    if (!st.isFile()) return { problem: `"${path}" is not a regular file` };
    if (st.size > MAX_SECRET_FILE_BYTES)
      return { problem: `"${path}" is ${st.size} bytes: a token file holds only the token` };
    const text = readFileSync(path, 'utf8').trimEnd();
    return text === '' ? { problem: `"${path}" is empty` } : { text };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: `"${path}" cannot be read (${code === 'ENOENT' ? 'it does not exist' : (code ?? 'error')})` };
  }
}

/**
 * The values at a schema path, each with the key a message names it by: `kinds.*.buckets[].x`
 * → [`kinds.hub.buckets[0].x`, value]. Only through mappings and lists of the expected shape;
 * whatever else is there, the checks report.
 */
function valuesAt(raw: unknown, pattern: string): Array<[key: string, value: unknown]> {
  let found: Array<[string, unknown]> = [['', raw]];
  for (const part of pattern.split('.')) {
    const list = part.endsWith('[]');
    const name = list ? part.slice(0, -2) : part;
    found = found.flatMap(([key, v]): Array<[string, unknown]> => {
      if (!isObject(v)) return [];
      const at = (k: string): string => (key === '' ? k : `${key}.${k}`);
      if (name === '*') return Object.keys(v).map((k) => [at(k), v[k]]);
      if (!Object.hasOwn(v, name)) return [];
      if (!list) return [[at(name), v[name]]];
      const items = v[name];
      return Array.isArray(items) ? items.map((item, i) => [`${at(name)}[${i}]`, item]) : [];
    });
  }
  return found;
}

/** Every secret file the configuration names, read, by the key that names it. */
export function readSecretFiles(raw: unknown): Map<string, SecretFileRead> {
  const out = new Map<string, SecretFileRead>();
  for (const pattern of SECRET_FILE_PATHS) {
    for (const [key, path] of valuesAt(raw, pattern)) {
      if (typeof path === 'string' && path !== '') out.set(key, readSecretFile(path));
    }
  }
  return out;
}
