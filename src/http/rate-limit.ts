/**
 * Failed authentications, counted per source (http/trust.ts `sourceOf`) in a fixed window that
 * starts at the source's first failure. Past the limit the gate (http/gate.ts) answers the
 * source 429 (with Retry-After) on every route that needs credentials until its window ends,
 * before its token is even looked at: guessing stays slow whatever the token, and a flood of
 * bad requests cannot flood the log. Memory is bounded: at most MAX_PEERS sources are tracked,
 * the oldest window dropped first.
 */

/** Failed authentications a source may make per window before it is refused (the whole group's, with workers). */
export const AUTH_FAILURES_ALLOWED = 60;
/** One minute. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;
const MAX_PEERS = 10_000;

interface Window {
  start: number;
  failures: number;
}

export class FailureLimiter {
  private readonly peers = new Map<string, Window>();

  constructor(
    readonly allowed = AUTH_FAILURES_ALLOWED,
    readonly windowMs = AUTH_FAILURE_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds the peer must wait, or 0 when it may try. */
  retryAfter(peer: string): number {
    const w = this.peers.get(peer);
    if (w === undefined) return 0;
    const left = w.start + this.windowMs - this.now();
    if (left <= 0) {
      this.peers.delete(peer);
      return 0;
    }
    return w.failures >= this.allowed ? Math.ceil(left / 1000) : 0;
  }

  /** Records a failure; true when it is the one that reaches the limit (log it once). */
  fail(peer: string): boolean {
    const t = this.now();
    let w = this.peers.get(peer);
    if (w === undefined || t - w.start >= this.windowMs) {
      if (w !== undefined) this.peers.delete(peer);
      if (this.peers.size >= MAX_PEERS) this.peers.delete(this.peers.keys().next().value!);
      w = { start: t, failures: 0 };
      this.peers.set(peer, w);
    }
    w.failures++;
    return w.failures === this.allowed;
  }
}
