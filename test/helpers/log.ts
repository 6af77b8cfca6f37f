/**
 * A log destination that keeps what a logger writes, for tests that assert on log lines: the
 * raw text (to show that a secret never reaches it) and each line as a parsed event. The test
 * picks the logger: `createLogger(level, rec.sink)` as the sharder logs, or plain
 * `pino({ level }, rec.sink)` to see exactly what the code logs, with no redaction.
 */
import { Writable } from 'node:stream';

export interface LogRecorder {
  /** Where the logger writes. */
  readonly sink: Writable;
  /** Each complete line so far, parsed, in order; the same array as lines arrive. */
  readonly events: Array<Record<string, unknown>>;
  /** Everything written so far. */
  readonly text: () => string;
}

export function logRecorder(): LogRecorder {
  let text = '';
  let partial = '';
  const events: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      const s = String(chunk);
      text += s;
      const lines = (partial + s).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line !== '') events.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { sink, events, text: () => text };
}
