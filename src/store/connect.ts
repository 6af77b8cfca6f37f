/**
 * Connection helpers shared by the server backends (postgres/, mariadb/): libpq's sslmode
 * semantics on node:tls, passwords kept out of logs and serialised settings, small readers.
 */
import type { ConnectionOptions } from 'node:tls';
import type { PgSslMode } from '../config/types.js';

/**
 * libpq's sslmode semantics on node:tls. `require` with a CA file behaves as verify-ca, as
 * libpq does. verify-ca checks the chain but not the host name; verify-full checks both
 * (against the system CAs when no CA file is given).
 */
export function tlsOptions(mode: PgSslMode, ca: Buffer | undefined): false | ConnectionOptions {
  switch (mode) {
    case 'disable':
      return false;
    case 'require':
      return ca === undefined
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    case 'verify-ca':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
  }
}

/** Makes `password` a non-enumerable property of `obj` (as pg does): never logged or serialised. */
export function hidePassword(obj: object, password: string | undefined): void {
  if (password === undefined) return;
  Object.defineProperty(obj, 'password', { value: password, enumerable: false, writable: false, configurable: true });
}

export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The first line of a secret file. */
export function firstLine(bytes: Buffer): string {
  return bytes.toString('utf8').split(/\r?\n/)[0]!;
}

/**
 * The password on the first line of `path`, or undefined after reporting (as `key`) a file
 * that is empty or cannot be read: never the file's contents.
 */
export function readPasswordFile(
  readFile: (path: string) => Buffer,
  path: string,
  key: string,
  report: (key: string, message: string) => void,
): string | undefined {
  try {
    const password = firstLine(readFile(path));
    if (password === '') report(key, 'is empty: put the password on its first line');
    return password;
  } catch (err) {
    report(
      key,
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): it must name a file readable by the ` +
        `sharder's user`,
    );
    return undefined;
  }
}
