/**
 * A PostgreSQL session that ends as it begins: the server says it is ready and, in the same
 * read, that it is terminating the connection (57P01, as pg_terminate_backend or a shutdown
 * sends it). Every connection of the PostgreSQL backend is a FailoverClient (store/postgres/
 * hosts.ts), whose connect resolves a few promise steps after pg's; an error in that gap once
 * had no listener and was an uncaught exception, which ends the process. The peer here is a
 * real socket speaking the start of the wire protocol, because only a peer that writes both
 * messages at once makes the gap certain rather than a matter of timing.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import type { PgTargetSessionAttrs } from '../../src/config/postgres.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { convertPgError } from '../../src/store/postgres/connect.js';
import { PostgresHosts } from '../../src/store/postgres/hosts.js';
import type { HasAfter } from '../helpers/context.js';

/** One backend message: type byte, length (itself included), body. */
function message(type: string, body: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([Buffer.from(type, 'latin1'), length, body]);
}

const AUTHENTICATION_OK = message('R', Buffer.from([0, 0, 0, 0]));
const READY_FOR_QUERY = message('Z', Buffer.from('I'));
const TERMINATING = message(
  'E',
  Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0', 'latin1'),
);

/** A server that accepts any startup, then writes "ready" and "terminating" in one write and closes. */
async function endingServer(t: HasAfter): Promise<{ port: number; sessions: () => number }> {
  let sessions = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => {
      sessions++;
      socket.end(Buffer.concat([AUTHENTICATION_OK, READY_FOR_QUERY, TERMINATING]));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, sessions: () => sessions };
}

function clientConfig(port: number): pg.ClientConfig {
  return { host: '127.0.0.1', port, user: 'sharder', database: 'sharder', password: 'unused' };
}

function assertTerminated(err: unknown): true {
  assert.ok(err instanceof pg.DatabaseError, `pg's own error, not a later one: ${String(err)}`);
  assert.equal(err.code, '57P01');
  assert.ok(convertPgError(err) instanceof StoreUnavailableError, 'answered as 503 store unavailable');
  return true;
}

for (const target of ['any', 'read-write', 'primary'] as const satisfies readonly PgTargetSessionAttrs[]) {
  test(`target_session_attrs ${target}: a session ended in the same read as its ready message fails the pool's query, and nothing is uncaught`, async (t) => {
    const peer = await endingServer(t);
    const config = clientConfig(peer.port);
    const hosts = new PostgresHosts([{ host: '127.0.0.1', port: peer.port }], target, config, silentLogger());
    // As PostgresStore.open builds its pool: every connection a FailoverClient.
    const pool = new pg.Pool({ ...config, Client: hosts.Client });
    pool.on('error', () => undefined);
    t.after(() => pool.end().catch(() => undefined));
    // node:test fails the test on an uncaught exception; the query must fail with the server's reason.
    await assert.rejects(pool.query('SELECT 1'), assertTerminated);
    await assert.rejects(pool.query('SELECT 1'), assertTerminated, 'the next connection fails the same way');
    // Each query opened its own (with a session check, the failed host is also probed once more).
    assert.ok(peer.sessions() >= 2, `${peer.sessions()} sessions: the lost one was not pooled and reused`);
    assert.equal(pool.totalCount, 0, 'no connection is kept');
  });
}

test('a lone FailoverClient (the LISTEN and migration connections) rejects its connect with the reason', async (t) => {
  const peer = await endingServer(t);
  const config = clientConfig(peer.port);
  const hosts = new PostgresHosts([{ host: '127.0.0.1', port: peer.port }], 'any', config, silentLogger());
  const client = new hosts.Client(config);
  await assert.rejects(client.connect(), assertTerminated);
  assert.equal(client.listenerCount('error'), 0, 'the listener that covered the gap is gone');
});
