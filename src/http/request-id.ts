/**
 * Request ids for answers that went wrong: returned in `X-Request-Id` and logged with the
 * error, so that an operator can find the log line from what a user or nginx saw. nginx's
 * `$request_id` (sent by nginx/sharder-auth.conf as X-Request-Id) is taken from a trusted
 * proxy, so one id runs through nginx's log and ours; otherwise one is made. Only error paths
 * ask for one: a successful /auth hit allocates nothing.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** nginx's $request_id is 32 hex digits; other proxies send UUIDs or similar. Nothing else is echoed. */
const ACCEPTED = /^[A-Za-z0-9._:@+=-]{8,128}$/;

/** The proxy's request id when `trusted` and well-formed, else a new random one. */
export function requestId(req: IncomingMessage, trusted: boolean): string {
  if (trusted) {
    const h = req.headers['x-request-id'];
    if (typeof h === 'string' && ACCEPTED.test(h)) return h;
  }
  return randomUUID();
}
