/**
 * Readiness for systemd (`Type=notify`): tells the service manager READY=1 once the listener
 * accepts connections, and STOPPING=1 when a graceful stop begins.
 *
 * sd_notify is one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET, and Node.js has no
 * unix datagram sockets (node:dgram is UDP only). The npm packages that fill the gap are native
 * addons around libsystemd, little maintained, and would add a second native build next to
 * better-sqlite3. So we run systemd's own `systemd-notify`, which every systemd host has. It
 * is a child process, not the main PID, so the unit needs `NotifyAccess=all`; and because it
 * exits right after sending, systemd could fail to attribute the message to our unit, which
 * `systemd-notify` itself prevents since systemd 246 by waiting on a notification barrier
 * (BARRIER=1) before it exits. Without $NOTIFY_SOCKET (not run by systemd, or Type=simple/exec)
 * nothing is spawned.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../log.js';

/** How long one systemd-notify call may take (its barrier wait is 5 s) before we give up on it. */
export const NOTIFY_TIMEOUT_MS = 10_000;

export interface Notifier {
  /** READY=1 with a status line for `systemctl status`. */
  ready(status: string): Promise<void>;
  /** STOPPING=1: systemd shows "deactivating" while requests in flight finish. */
  stopping(status: string): Promise<void>;
}

/** The systemd notifier when $NOTIFY_SOCKET is set, else undefined. */
export function systemdNotifier(env: NodeJS.ProcessEnv, log: Logger, command = 'systemd-notify'): Notifier | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return undefined;
  const send = (args: string[], what: string): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        // Logged, never thrown: the sharder serves either way. With Type=notify systemd then
        // times the start out (TimeoutStartSec) and the journal shows this line as the reason.
        log.warn({ event: 'systemd_notify_failed', what, reason }, `could not tell systemd ${what}: ${reason}`);
        resolve();
      };
      let child;
      try {
        child = spawn(command, args, {
          env: { ...env, NOTIFY_SOCKET: socket },
          stdio: ['ignore', 'ignore', 'pipe'],
          timeout: NOTIFY_TIMEOUT_MS,
        });
      } catch (err) {
        fail((err as Error).message);
        return;
      }
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.once('error', (err) => fail(`${command}: ${err.message}`));
      child.once('close', (code, signal) => {
        if (code === 0 && !settled) {
          settled = true;
          log.debug({ event: 'systemd_notified', what }, `told systemd ${what}`);
          resolve();
        } else {
          fail(`${command} exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
        }
      });
    });
  return {
    ready: (status) => send(['--ready', `--status=${status}`], 'READY=1'),
    stopping: (status) => send([`--status=${status}`, 'STOPPING=1'], 'STOPPING=1'),
  };
}
