/**
 * The one "poll until" of the tests: for conditions no event announces (a row committed by
 * another process, a log line of a child). Throws when the condition is not met in time.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with the milliseconds it took once `cond` holds; checks every `everyMs`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what = 'condition',
  everyMs = 10,
): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(everyMs);
  }
  return Date.now() - start;
}
