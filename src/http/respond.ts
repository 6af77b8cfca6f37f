import type { ServerResponse } from 'node:http';

/** Sends a JSON body with the right length; `extra` is a flat header list. */
export function sendJson(res: ServerResponse, status: number, body: unknown, extra: readonly string[] = []): void {
  const text = JSON.stringify(body);
  res.writeHead(status, [
    ...extra,
    'Content-Type',
    'application/json; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(text)),
    'Cache-Control',
    'no-store',
  ]);
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  extra: readonly string[] = [],
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { code, message }, extra);
}
