/**
 * Logging: pino, one JSON line per event. The logger is injected everywhere (tests pass a
 * silent one). Secrets are never passed to it; `redact` is a second line of defence for
 * fields that could carry them. On a terminal (log.format auto) the lines are rewritten for
 * people by log-pretty.ts.
 */
import { isatty } from 'node:tty';
import { pino } from 'pino';
import type { LogFormat, LogLevel } from './config/types.js';
import { prettyDestination } from './log-pretty.js';

export type Logger = pino.Logger;

export const REDACT_PATHS = [
  'password', 'token', 'authorization', 'cookie', 'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
  '*.password', '*.token', '*.authorization', '*.cookie',
];

/** `auto` is pretty when the destination is a terminal. */
export function resolveLogFormat(format: LogFormat, fd: number): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  try {
    return isatty(fd) ? 'pretty' : 'json';
  } catch {
    return 'json';
  }
}

export function createLogger(level: LogLevel, destination: pino.DestinationStream | number = 1, format: LogFormat = 'json'): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'sharder', pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (typeof destination !== 'number') return pino(options, destination);
  if (resolveLogFormat(format, destination) === 'pretty') {
    return pino(options, prettyDestination(destination, !process.env.NO_COLOR));
  }
  return pino(options, pino.destination({ dest: destination, sync: false }));
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
