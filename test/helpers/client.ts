/**
 * Clients for proxy-mode tests: node:http requests with full control over headers, body
 * streams, the local address (to play an untrusted peer) and aborts; websockets through `ws`.
 */
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { WebSocket } from 'ws';

export interface SendOptions {
  method?: string;
  headers?: OutgoingHttpHeaders | readonly string[];
  body?: string | Buffer | Readable;
  /** Bind the client to this address (127.0.0.2 is loopback but outside 127.0.0.1/32). */
  localAddress?: string;
  /** false: a new connection that is closed after the answer. */
  agent?: false;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

/** One HTTP request over a real socket; resolves with the whole answer. */
export async function send(url: string, opts: SendOptions = {}): Promise<Answer> {
  const body = opts.body;
  let headers = opts.headers;
  // Node frames a fixed body with Content-Length only for some methods (not DELETE): always do.
  if (
    (typeof body === 'string' || Buffer.isBuffer(body)) &&
    headers !== undefined &&
    !Array.isArray(headers) &&
    !('content-length' in headers || 'Content-Length' in headers)
  ) {
    headers = { ...headers, 'Content-Length': String(Buffer.byteLength(body)) };
  }
  const u = new URL(url);
  const req = httpRequest({
    host: u.hostname,
    port: u.port,
    // The path as written (new URL() would resolve dot segments, which tests send on purpose).
    path: url.slice(url.indexOf('/', u.protocol.length + 2)) || '/',
    method: opts.method ?? 'GET',
    headers: headers as OutgoingHttpHeaders,
    localAddress: opts.localAddress,
    agent: opts.agent,
  });
  if (body === undefined) req.end();
  else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
  else body.pipe(req);
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  return {
    status: res.statusCode!,
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    body: buf,
    text: buf.toString('utf8'),
  };
}

export const json = <T = Record<string, unknown>>(a: Answer): T => JSON.parse(a.text) as T;

/** Opens a websocket; resolves once open (or rejects with the HTTP status that refused it). */
export function openWs(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, localAddress, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () =>
        reject(
          Object.assign(new Error(`websocket refused with ${res.statusCode}: ${text}`), {
            status: res.statusCode,
            body: text,
          }),
        ),
      );
    });
    ws.once('error', reject);
  });
}

/** Sends one message and waits for the next one. */
export async function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; binary: boolean }> {
  const answer = once(ws, 'message') as Promise<[Buffer, boolean]>;
  ws.send(data);
  const [d, binary] = await answer;
  return { data: d, binary };
}

export async function closeWs(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}
