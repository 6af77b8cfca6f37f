/** What proxy mode writes itself: the page for a failed hub, and plain answers on raw sockets. */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { REQUEST_ID_HEADER } from '../http/request-id.js';

/**
 * After one side of a websocket closes, how long the other side may take to flush and close
 * before it is destroyed: a hub or client that never answers our FIN must not hold a socket.
 */
const HALF_CLOSED_GRACE_MS = 5_000;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function errorPage(status: number, bucket: string, message: string, code: string): string {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;
  margin:4em auto;padding:0 1em;color:#222}code{color:#666}</style></head>
<body><h1>Your hub is not available</h1>
<p>${escapeHtml(message)}</p>
<p>Hub: <strong>${escapeHtml(bucket)}</strong> &middot; <code>${title} &middot; ${escapeHtml(code)}</code></p>
</body></html>
`;
}

export interface SocketAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly bucket?: string | undefined;
  readonly id: string;
}

/** A JSON HTTP answer as bytes, for a socket that has not been switched to a websocket. */
export function socketAnswerText(httpVersion: string, a: SocketAnswer): string {
  const body = JSON.stringify(
    a.bucket === undefined
      ? { code: a.code, message: a.message }
      : { code: a.code, message: a.message, bucket: a.bucket },
  );
  return (
    `HTTP/${httpVersion === '1.0' ? '1.0' : '1.1'} ${a.status} ` +
    `${STATUS_TEXT[a.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${REQUEST_ID_HEADER}: ` +
    `${a.id}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Writes a JSON HTTP answer on a socket that has not been switched, then closes it. */
export function answerSocket(req: IncomingMessage, socket: Socket, a: SocketAnswer): void {
  if (socket.destroyed) return;
  socket.end(socketAnswerText(req.httpVersion, a));
  halfClosed(socket);
}

/** Destroys a socket that has not closed within HALF_CLOSED_GRACE_MS (its peer never answered our FIN). */
export function halfClosed(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), HALF_CLOSED_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
