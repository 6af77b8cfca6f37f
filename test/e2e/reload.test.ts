/**
 * Live reload: SIGHUP to a spawned `sharder serve` re-reads sharder.yml. Adding a bucket,
 * draining one, changing a weight and an upstream take effect on a keep-alive connection that
 * stays open throughout; an invalid file is rejected, logged, and the old configuration kept.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import type { RawConfig } from '../../src/config/types.js';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

/** One persistent HTTP/1.1 connection; /auth answers have no body, so a response ends at CRLFCRLF. */
class KeepAlive {
  private buf = '';
  private waiting: (() => void) | undefined;
  closed = false;
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.waiting?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  static async open(url: string): Promise<KeepAlive> {
    const u = new URL(url);
    const sock = connect(Number(u.port), u.hostname);
    await once(sock, 'connect');
    return new KeepAlive(sock);
  }

  async auth(name: string): Promise<Record<string, string>> {
    this.sock.write(`GET /auth HTTP/1.1\r\nHost: x\r\nREMOTE_USER: ${name}\r\n\r\n`);
    while (!this.buf.includes('\r\n\r\n')) {
      if (this.closed) throw new Error('the connection was dropped');
      await new Promise<void>((r) => (this.waiting = r));
    }
    const end = this.buf.indexOf('\r\n\r\n');
    const head = this.buf.slice(0, end);
    this.buf = this.buf.slice(end + 4);
    const [status, ...lines] = head.split('\r\n');
    const headers: Record<string, string> = { status: status!.split(' ')[1]! };
    for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    return headers;
  }

  close(): void {
    this.sock.destroy();
  }
}

test('SIGHUP: add a bucket, drain one, change a weight and an upstream, on a connection that stays open', async (t) => {
  const dir = tempDir(t);
  const base = (buckets: Record<string, unknown>[]): RawConfig =>
    rawConfig(dir, { kinds: { hub: { buckets } }, log: { level: 'info' } });
  const file = writeConfig(
    dir,
    base([
      { name: 'hub-0', upstream: 'http://10.0.0.10:8000' },
      { name: 'hub-1', upstream: 'http://10.0.0.11:8000' },
      { name: 'hub-2', upstream: 'http://10.0.0.12:8000' },
    ]),
  );
  const server = await spawnServe(t, file);
  const conn = await KeepAlive.open(server.url);
  t.after(() => conn.close());
  const before: string[] = [];
  for (const n of ['u1', 'u2', 'u3']) before.push((await conn.auth(n))['x-shard-bucket']!);
  assert.deepEqual(before, ['hub-0', 'hub-1', 'hub-2']);

  writeConfig(
    dir,
    base([
      { name: 'hub-0', upstream: 'http://10.0.0.10:8000', state: 'draining' },
      { name: 'hub-1', upstream: 'http://10.0.0.11:8000', weight: 3 },
      { name: 'hub-2', upstream: 'http://10.0.0.99:8000' },
      { name: 'hub-3', upstream: 'http://10.0.0.13:8000' },
    ]),
  );
  server.child.kill('SIGHUP');
  await server.logged(/"event":"reloaded"/);

  const u3 = await conn.auth('u3');
  assert.equal(u3['x-shard-bucket'], 'hub-2', 'assignments are permanent');
  assert.equal(
    u3['x-shard-upstream'],
    'http://10.0.0.99:8000',
    'the new upstream, for an object cached before the reload',
  );
  const fresh: string[] = [];
  for (let i = 0; i < 8; i++) fresh.push((await conn.auth(`new-${i}`))['x-shard-bucket']!);
  // Counts 1/1/1/0; hub-1 weighs 3, hub-3 is new, hub-0 drains: (count+1)/weight decides.
  assert.deepEqual(fresh, ['hub-1', 'hub-1', 'hub-3', 'hub-1', 'hub-1', 'hub-1', 'hub-2', 'hub-3']);
  assert.equal((await conn.auth('u1'))['x-shard-bucket'], 'hub-0', 'a draining bucket keeps its objects');

  // An invalid file: rejected with its problems logged, the old configuration kept.
  writeConfig(dir, base([{ name: 'hub-0', weight: -1 }, { name: 'hub-0' }]));
  server.child.kill('SIGHUP');
  await server.logged(/"event":"reload_rejected"/);
  assert.match(server.output(), /"event":"reload_rejected".*kinds\.hub\.buckets\[0\]\.weight.*duplicate bucket name/);
  assert.equal((await conn.auth('u3'))['x-shard-upstream'], 'http://10.0.0.99:8000');
  assert.equal((await conn.auth('new-8'))['x-shard-bucket'], 'hub-1', 'weights of the old configuration still apply');
  assert.equal(conn.closed, false, 'the connection stayed open through both reloads');
  assert.equal(server.child.exitCode, null, 'still serving');
});
