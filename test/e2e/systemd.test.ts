/**
 * The systemd unit: checked by systemd's own analyzer (verify, offline security review), and
 * readiness as systemd sees it: READY=1 and STOPPING=1 datagrams on a real $NOTIFY_SOCKET.
 * No systemd runs as PID 1 on our machines, so the unit itself is not started here.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseUnit } from '../helpers/deploy.js';
import { needs } from '../helpers/env.js';
import { get } from '../helpers/http.js';
import { ROOT, rawConfig, runCli, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

const UNIT = join(ROOT, 'systemd/sharder.service');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

const missingTools = ['systemd-analyze', 'systemd-notify', 'perl'].filter((c) => !has(c));
const skip = needs(
  'systemd',
  missingTools.length ? `${missingTools.join(', ')} not found (apt-get install systemd perl)` : undefined,
);

describe('systemd unit', () => {
  test('systemd-analyze verify accepts it without a warning', { skip }, () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
  });

  test('the offline security review rates it at most 2.0, and docs/deploying.md gives the figure', { skip }, () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = /Overall exposure level for sharder\.service: (\d+\.\d)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const exposure = m[1]!;
    assert.ok(Number(exposure) <= 2.0, `exposure ${exposure}`);
    assert.ok(
      readFileSync(join(ROOT, 'docs', 'deploying.md'), 'utf8').includes(`exposure level **${exposure}`),
      `docs/deploying.md must state exposure level **${exposure}**`,
    );
  });

  test('it runs the built sharder with /etc/sharder/sharder.yml, as its own user, and is hardened', () => {
    const service = parseUnit(readFileSync(UNIT, 'utf8')).get('Service')!;
    const one = (k: string): string | undefined => service.get(k)?.at(-1);
    assert.match(
      one('ExecStart')!,
      /^\/usr\/bin\/node \/opt\/sharder\/current\/node_modules\/sharder\/bin\/sharder\.js serve --config \/etc\/sharder\/sharder\.yml$/,
    );
    assert.equal(one('Type'), 'notify');
    assert.equal(one('NotifyAccess'), 'all');
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('StateDirectory'), 'sharder');
    assert.equal(one('User'), 'sharder');
    assert.match(one('EnvironmentFile')!, /^-\/etc\/sharder\/sharder\.env$/);
    for (const [k, v] of <[string, string][]>[
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['PrivateTmp', 'yes'],
      ['ProtectHome', 'yes'],
      ['CapabilityBoundingSet', ''],
    ])
      assert.equal(one(k), v, k);
    assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX');
  });

  test('the /etc configuration it ships validates and keeps the database in the state directory', async () => {
    const r = await runCli(['check-config', '--config', join(ROOT, 'systemd/sharder.yml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      readFileSync(join(ROOT, 'systemd/sharder.yml'), 'utf8'),
      /^database: sqlite:\/var\/lib\/sharder\/sharder\.db$/m,
    );
  });
});

/** A unix datagram socket standing in for systemd's notify socket (Node.js cannot bind one). */
async function notifySocket(
  t: HasAfter,
  path: string,
): Promise<{ messages: string[]; waitFor(re: RegExp): Promise<string> }> {
  const script =
    'use Socket; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!"; bind($s, ' +
    'pack_sockaddr_un($ARGV[0])) or die "bind: $!"; $| = 1; print "bound\\n"; while (1) { my $b; ' +
    'defined(recv($s, $b, 65536, 0)) or die "recv: $!"; $b =~ s/\\n/|/g; print "$b\\n"; }';
  const child: ChildProcess = spawn('perl', ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const messages: string[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      messages.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (re: RegExp): Promise<string> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const hit = messages.find((m) => re.test(m));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`no notify message matching ${re}; got ${JSON.stringify(messages)}`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 200))]);
    }
  };
  await waitFor(/^bound$/);
  return { messages, waitFor };
}

describe('readiness for systemd (Type=notify)', { skip }, () => {
  test('READY=1 once the listener is up, STOPPING=1 on SIGTERM, then a clean exit', { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const sock = await notifySocket(t, join(dir, 'notify.sock'));
    const cfg = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
    const server = await spawnServe(t, cfg, { NOTIFY_SOCKET: join(dir, 'notify.sock') });
    const ready = await sock.waitFor(/READY=1/);
    assert.ok(ready.includes(`STATUS=listening on ${server.url}`), ready);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    assert.equal(sock.messages.filter((m) => m.includes('READY=1')).length, 1);
    server.child.kill('SIGTERM');
    await sock.waitFor(/STOPPING=1/);
    const [code] = (await once(server.child, 'exit')) as [number | null];
    assert.equal(code, 0);
  });

  test('a notify socket that is gone is logged, and the sharder serves anyway', { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const cfg = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
    const server = await spawnServe(t, cfg, { NOTIFY_SOCKET: join(dir, 'nobody-listens.sock') });
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    await server.logged(/"event":"systemd_notify_failed"/);
    assert.match(server.output(), /"event":"systemd_notify_failed","what":"READY=1"/);
    assert.equal((await get(`${server.url}/auth`, { REMOTE_USER: 'alice' })).status, 200);
  });
});

test('without NOTIFY_SOCKET nothing is sent to systemd', async () => {
  const { systemdNotifier } = await import('../../src/process/systemd.js');
  const { silentLogger } = await import('../../src/log.js');
  assert.equal(systemdNotifier({}, silentLogger()), undefined);
  assert.ok(systemdNotifier({ NOTIFY_SOCKET: '/run/x' }, silentLogger()));
});
