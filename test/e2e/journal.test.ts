/**
 * Logs under systemd: journald files each line of a service's standard output at the priority
 * its `<N>` prefix names (SyslogLevelPrefix=yes, systemd's default), else at info. With
 * `log.format: journal` (or `auto` when JOURNAL_STREAM names standard output) each JSON line
 * carries the prefix of its level. Checked by the exact bytes written, and, where this machine
 * allows it (root, unshare, systemd's journald), by a real journald in a private mount
 * namespace and `journalctl -p`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { resolveLogFormat } from '../../src/log.js';
import { needs } from '../helpers/env.js';
import { cliArgs, rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

/** pino level → the syslog priority journald must file it at. */
const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

/** Resolves once `output()` has a line for `event` (checked on every chunk the child writes). */
function logged(child: { stdout: NodeJS.ReadableStream | null }, output: () => string, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (output().includes(`"event":"${event}"`)) {
        child.stdout!.off('data', check);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stdout!.once('end', () => reject(new Error(`no ${event} line:\n${output()}`)));
    check();
  });
}

test('log.format: journal writes every JSON line behind the syslog priority of its level', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info', format: 'journal' } }));
  // No admin token: a warning at start. A broken file on SIGHUP: an error.
  const { child, output } = await spawnServe(t, file, { SHARDER_LOG_LEVEL: 'info' });
  await logged(child, output, 'admin_api_disabled');
  writeFileSync(file, 'listen: [');
  child.kill('SIGHUP');
  await logged(child, output, 'reload_rejected');
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);

  const lines = output()
    .split('\n')
    .filter((l) => l !== '');
  const events = new Map<string, string>();
  for (const line of lines) {
    const m = /^<([0-7])>(\{"level":(\d+),.*\})$/.exec(line);
    assert.ok(m, `a prefixed JSON line: ${line}`);
    assert.equal(Number(m[1]), PRIORITY[Number(m[3])], line);
    const entry = JSON.parse(m[2]!) as { event?: string };
    if (entry.event !== undefined) events.set(entry.event, line.slice(0, 3));
  }
  assert.equal(events.get('started'), '<6>');
  assert.equal(events.get('admin_api_disabled'), '<4>');
  assert.equal(events.get('reload_rejected'), '<3>');
  assert.equal(events.get('stopped'), '<6>');
});

test('log.format: auto is journal when JOURNAL_STREAM names standard output, as systemd sets it', (t) => {
  const dir = tempDir(t);
  const fd = openSync(join(dir, 'out'), 'w');
  t.after(() => closeSync(fd));
  const st = fstatSync(fd, { bigint: true });
  assert.equal(resolveLogFormat('auto', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }), 'journal');
  assert.equal(
    resolveLogFormat('auto', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }),
    'json',
    'another stream: the journal is not our standard output',
  );
  assert.equal(resolveLogFormat('auto', fd, { JOURNAL_STREAM: 'garbage' }), 'json');
  assert.equal(resolveLogFormat('auto', fd, {}), 'json');
  assert.equal(
    resolveLogFormat('json', fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }),
    'json',
    'an explicit format stays',
  );
});

/** Why a private journald cannot run here, or undefined when it can. */
function noJournald(): string | undefined {
  if (process.getuid?.() !== 0) return 'a private journald needs root (mount namespace)';
  for (const tool of ['unshare', 'nsenter', 'systemd-cat', 'journalctl', 'stat']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `${tool} not found (apt-get install systemd util-linux)`;
  }
  if (spawnSync('test', ['-x', JOURNALD]).status !== 0) return `${JOURNALD} not found (apt-get install systemd)`;
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'true']);
  return probe.status === 0 ? undefined : `unshare -m is not permitted here: ${String(probe.stderr).trim()}`;
}

const JOURNALD = '/lib/systemd/systemd-journald';
const TAG = 'sharder-journal-test';

/**
 * In a new mount namespace: empty tmpfs over journald's directories (nothing reaches the
 * host's journal), journald, then the sharder with its standard output connected to it by
 * systemd-cat as systemd connects a unit's (level prefixes parsed, JOURNAL_STREAM set to the
 * stream). The script prints the pids, then the sharder's exit status. The test reads the
 * journal with `journalctl` (not `-f`, whose output to a pipe is not flushed per entry here).
 */
const SCRIPT = `set -eu
for d in /run/systemd /run/log /var/log/journal; do mkdir -p "$d"; mount -t tmpfs tmpfs "$d"; done
mkdir -p /run/systemd/journal
${JOURNALD} </dev/null >/dev/null 2>&1 &
echo "JOURNALD=$!"
# journald has no readiness signal without systemd: wait for its socket, at most 10 s.
for _ in $(seq 200); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
[ -S /run/systemd/journal/stdout ] || { echo "JOURNALD_FAILED=1"; exit 1; }
systemd-cat --level-prefix=true -t ${TAG} \\
  sh -c 'export JOURNAL_STREAM="$(stat -L -c %d:%i /proc/$$/fd/1)"; exec "$@"' sh "$@" </dev/null &
echo "SHARDER=$!"
wait $! && echo "SHARDER_EXIT=0" || echo "SHARDER_EXIT=$?"
`;

test(
  'under a real journald, journalctl -p shows each line at the priority of its level',
  { skip: needs('systemd', noJournald()), timeout: 60_000 },
  async (t) => {
    const dir = tempDir(t);
    const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info', format: 'auto' } }));
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'bash',
        '-c',
        SCRIPT,
        'bash',
        process.execPath,
        ...cliArgs(['serve', '--config', file]),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pids: Record<string, number> = {};
    let exited: string | undefined;
    t.after(() => {
      for (const pid of [pids.SHARDER, pids.JOURNALD]) if (pid !== undefined) spawnSync('kill', ['-KILL', String(pid)]);
      child.kill('SIGKILL');
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^(JOURNALD|SHARDER|SHARDER_EXIT|JOURNALD_FAILED)=(\d+)$/.exec(line);
      if (m?.[1] === 'JOURNALD' || m?.[1] === 'SHARDER') pids[m[1]] = Number(m[2]);
      else if (m) exited = line;
    });
    /** The sharder's journal entries, read in its mount namespace. */
    const journal = (...args: string[]): string[] => {
      if (pids.JOURNALD === undefined) return [];
      const r = spawnSync(
        'nsenter',
        ['-t', String(pids.JOURNALD), '-m', 'journalctl', '-t', TAG, '--no-pager', ...args],
        { encoding: 'utf8' },
      );
      return r.status === 0 ? r.stdout.split('\n').filter((l) => l !== '') : [];
    };
    const entries = (): { MESSAGE: string; PRIORITY: string }[] =>
      journal('-o', 'json').map((l) => JSON.parse(l) as { MESSAGE: string; PRIORITY: string });
    const seen = (event: string, done = false): Promise<number> =>
      until(
        () => {
          if (exited !== undefined && !done)
            throw new Error(`${exited} before ${event}; the journal had:\n${journal('-o', 'cat').join('\n')}`);
          return entries().some((e) => e.MESSAGE.includes(`"event":"${event}"`));
        },
        30_000,
        `a journal entry for ${event}`,
      );
    await seen('admin_api_disabled');
    writeFileSync(file, 'listen: [');
    process.kill(pids.SHARDER!, 'SIGHUP');
    await seen('reload_rejected');
    process.kill(pids.SHARDER!, 'SIGTERM');
    await seen('stopped', true);

    // journald took the prefix off: the message is the JSON line, filed at its level's priority.
    for (const e of entries()) {
      const { level } = JSON.parse(e.MESSAGE) as { level: number };
      assert.equal(Number(e.PRIORITY), PRIORITY[level], e.MESSAGE);
    }
    const events = (priority: string): string[] =>
      journal('-p', priority, '-o', 'cat').map((l) => (JSON.parse(l) as { event?: string }).event ?? '');
    assert.deepEqual(events('warning'), ['admin_api_disabled', 'reload_rejected']);
    assert.deepEqual(events('err'), ['reload_rejected']);
    assert.ok(events('info').includes('started'));
  },
);
