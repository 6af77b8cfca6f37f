/**
 * Logging: pino, one JSON line per event. The logger is injected everywhere (tests pass a
 * silent one). Secrets are never passed to it; `redact` is a second line of defence for
 * fields that could carry them.
 */
import { pino } from 'pino';
import type { LogLevel } from './config/types.js';

export type Logger = pino.Logger;

export const REDACT_PATHS = ['password', 'token', 'authorization', 'cookie', 'headers.authorization', 'headers.cookie', '*.password', '*.token'];

export function createLogger(level: LogLevel, destination: pino.DestinationStream | number = 1): Logger {
  return pino(
    { level, base: { service: 'sharder', pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination,
  );
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
