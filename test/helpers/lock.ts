/**
 * Another process holding a SQLite database's write lock (sqlite-locker.ts): resolves with that
 * process once it holds the lock, which it keeps for `ms` milliseconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './sharder.js';

export function holdLock(file: string, ms: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test/helpers/sqlite-locker.ts'), file, String(ms)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('locked\n')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`locker exited with ${code} before locking: ${out}`)));
  });
}
