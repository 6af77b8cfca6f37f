/**
 * Human-readable log lines for a terminal (`log.format: pretty`, or `auto` on a TTY): pino
 * still builds its JSON line (so redaction applies exactly as in production) and this stream
 * rewrites it as `12:34:56.789 INFO  message  key=value ...`. Development only: it parses
 * every line, which a production log does not need to pay for.
 */
import { writeSync } from 'node:fs';

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '36'],
  30: ['INFO ', '32'],
  40: ['WARN ', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '35'],
};
/** Fields every line has, shown in the prefix or not at all. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'service', 'hostname']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One JSON log line as text (with its newline); a line that is not JSON is passed on as it is. */
export function prettyLine(line: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const [name, code] = LEVELS[o.level as number] ?? [String(o.level).padEnd(5), '0'];
  const time =
    typeof o.time === 'string'
      ? o.time.slice(11, 23)
      : typeof o.time === 'number'
        ? new Date(o.time).toISOString().slice(11, 23)
        : '';
  const paint = (c: string, t: string): string => (color ? `\x1b[${c}m${t}\x1b[0m` : t);
  const fields: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(o)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    if (k === 'err' && typeof v === 'object' && v !== null && typeof (v as { stack?: unknown }).stack === 'string') {
      stack = `\n    ${(v as { stack: string }).stack.split('\n').join('\n    ')}`;
      fields.push(`${k}=${value((v as { message?: unknown }).message)}`);
      continue;
    }
    fields.push(`${paint('2', `${k}=`)}${value(v)}`);
  }
  const msg = typeof o.msg === 'string' ? o.msg : '';
  return (
    `${paint('90', time)} ${paint(code, name)} ` + `${msg}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}${stack}\n`
  );
}

/** A pino destination writing pretty lines to a file descriptor, synchronously. */
export function prettyDestination(fd: number, color: boolean): { write(line: string): void } {
  return {
    write(chunk: string) {
      // pino may hand over several lines at once.
      for (const line of chunk.split('\n')) if (line !== '') writeSync(fd, prettyLine(line, color));
    },
  };
}
