/** Real HTTP over real sockets: undici for ordinary requests, raw TCP for malformed ones. */
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { request } from 'undici';

/**
 * A port on 127.0.0.1 that was free a moment ago: for servers that cannot listen on port 0 and
 * report it (nginx, PostgreSQL, MariaDB), and as a port nothing listens on (connections refused).
 */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  const r = await request(url, { method: method as 'GET', headers });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

/** Sends bytes as they are and returns everything the server answers until it closes or idles. */
export function raw(port: number, bytes: string | Buffer, idleMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    };
    sock.on('data', (d) => {
      chunks.push(d);
      arm();
    });
    sock.on('end', done);
    sock.on('error', (err) => (chunks.length > 0 ? done() : reject(err)));
    sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    arm();
  });
}

/** The status code of the first response in raw HTTP text. */
export const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
