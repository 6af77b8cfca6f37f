/**
 * The process's signals, for a single sharder and for the cluster primary alike: SIGHUP
 * reloads the configuration, the first SIGTERM or SIGINT stops gracefully.
 */

/** How long a graceful stop waits for requests in flight before closing their connections. */
export const STOP_GRACE_MS = 10_000;

export interface SignalHandlers {
  /** On every SIGHUP. */
  reload(): void;
  /** On SIGTERM and on SIGINT, with the signal's name. */
  stop(signal: string): Promise<void>;
}

/** Wires the signals to `on`; resolves once a stop has settled. */
export function untilStopped(on: SignalHandlers): Promise<void> {
  process.on('SIGHUP', () => on.reload());
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => void on.stop(signal).then(resolve, resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
