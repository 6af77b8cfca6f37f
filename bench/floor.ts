/**
 * The floor: a bare node:http server answering 200 with a constant header set of the same
 * shape as /auth's, as one process or as FLOOR_WORKERS cluster workers. FLOOR_UPSTREAM is the
 * X-Shard-Upstream it names (default http://127.0.0.1:9000). Idle connections are kept as long
 * as the sharder keeps them, so nginx's upstream keepalive meets the same peer. It prints
 * "listening PORT" once every worker listens.
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const headers = [
  'X-Shard-Bucket',
  'hub-0',
  'X-Shard-Kind',
  'hub',
  'X-Shard-Upstream',
  process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:9000',
  'Set-Cookie',
  'hub=hub-0; Path=/; HttpOnly; SameSite=Lax',
  'Content-Length',
  '0',
];
const workers = Number(process.env.FLOOR_WORKERS ?? 1);
const port = Number(process.env.FLOOR_PORT ?? 0);

if (workers > 1 && cluster.isPrimary) {
  let up = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', (addr) => {
      if (++up === workers) console.log(`listening ${addr.port}`);
    });
  }
} else {
  const server = createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end();
  });
  server.keepAliveTimeout = 75000;
  server.listen(port, '127.0.0.1', () => {
    if (cluster.isPrimary) console.log(`listening ${(server.address() as AddressInfo).port}`);
  });
}
