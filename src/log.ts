/**
 * Logging: pino, one JSON line per event. The logger is injected everywhere (tests pass a
 * silent one). Secrets are never passed to it; `redact` is a second line of defence for
 * fields that could carry them. On a terminal (log.format auto) the lines are rewritten for
 * people by log-pretty.ts.
 *
 * Under systemd, standard output is a stream to the journal, which files every line at the
 * unit's default priority (info) unless the line starts with a syslog priority prefix `<N>`
 * (SyslogLevelPrefix=yes, systemd's default): `log.format: journal` writes each JSON line with
 * the prefix of its level, so that `journalctl -p warning` shows warnings and worse. `auto`
 * chooses it when systemd says standard output is the journal (JOURNAL_STREAM, systemd.exec(5)).
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino } from 'pino';
import type { LogFormat, LogLevel } from './config/types.js';
import { prettyDestination } from './log-pretty.js';

export type Logger = pino.Logger;

export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.authorization',
  '*.cookie',
];

/**
 * `auto` is pretty when the destination is a terminal, journal when it is the stream systemd
 * connected to the journal: JOURNAL_STREAM holds that stream's `device:inode`.
 */
export function resolveLogFormat(
  format: LogFormat,
  fd: number,
  env: NodeJS.ProcessEnv = process.env,
): Exclude<LogFormat, 'auto'> {
  if (format !== 'auto') return format;
  try {
    if (isatty(fd)) return 'pretty';
    const journal = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
    if (journal) {
      const st = fstatSync(fd, { bigint: true });
      if (String(st.dev) === journal[1] && String(st.ino) === journal[2]) return 'journal';
    }
  } catch {
    // not a file descriptor we can inspect: plain JSON
  }
  return 'json';
}

/** syslog priority of each pino level: debug 7, info 6, warning 4, err 3, crit 2. */
const PRIORITY: Readonly<Record<string, string>> = { 10: '<7>', 20: '<7>', 30: '<6>', 40: '<4>', 50: '<3>', 60: '<2>' };

/** The `<N>` prefix for one pino JSON line, which always starts with `{"level":NN,`. */
export function journalPrefix(line: string): string {
  return line.startsWith('{"level":') ? (PRIORITY[line.slice(9, 11)] ?? '<6>') : '<6>';
}

/** pino's asynchronous destination, each line written with its syslog priority prefix. */
function journalDestination(
  fd: number,
): pino.DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  const out = pino.destination({ dest: fd, sync: false });
  return {
    write(chunk: string) {
      // pino hands over one line per call; split anyway rather than mislabel a second one.
      let rest = chunk;
      for (let nl = rest.indexOf('\n'); nl !== -1 && nl < rest.length - 1; nl = rest.indexOf('\n')) {
        out.write(journalPrefix(rest) + rest.slice(0, nl + 1));
        rest = rest.slice(nl + 1);
      }
      if (rest !== '') out.write(journalPrefix(rest) + rest);
    },
    flush: (cb) => out.flush(cb),
    flushSync: () => out.flushSync(),
  };
}

export function createLogger(
  level: LogLevel,
  destination: pino.DestinationStream | number = 1,
  format: LogFormat = 'json',
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'sharder', pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (typeof destination !== 'number') return pino(options, destination);
  const resolved = resolveLogFormat(format, destination);
  if (resolved === 'pretty') return pino(options, prettyDestination(destination, !process.env.NO_COLOR));
  if (resolved === 'journal') return pino(options, journalDestination(destination));
  return pino(options, pino.destination({ dest: destination, sync: false }));
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
