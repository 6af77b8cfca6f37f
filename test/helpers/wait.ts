/**
 * The one "poll until" of the suite: for conditions that no event announces (a counter in
 * another part of the server, a row written by another process). It checks on every turn of
 * the event loop's timers (10 ms), never sleeps a fixed time, and fails with what it waited for.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what = 'condition', ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
