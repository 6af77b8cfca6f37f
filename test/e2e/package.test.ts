/**
 * The npm package as an operator gets it: `npm pack` in this tree, then the install
 * guide ("Install on a VM (systemd)", the blocks marked as tested) followed in an empty
 * temporary root, then the installed sharder started the ways it is run in production (the
 * systemd unit's ExecStart, the Docker image's entry command, `sharder serve` in an empty
 * folder), each answering /auth.
 *
 * The install really runs npm (from the local npm cache first, then the registry). Nothing in
 * it is compiled and no script runs: the package builds dist/ in `prepack` (never `prepare`,
 * which npm would run when the tarball is installed), and the SQLite driver ships its binary.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { execForm, parseDockerfile, parseUnit, testedBlocks, underRoot } from '../helpers/deploy.js';
import { get } from '../helpers/http.js';
import { ROOT, bucketsRaw } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Starts a server command and resolves with its URL once its "started" log line names it. */
async function startServer(
  t: HasAfter,
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} did not start within 20 s:\n${out}`)), 20_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /"listen":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

test(
  'the packed tarball holds only what runs, and the install guide (docs/deploying.md) gives a sharder serving /auth',
  { timeout: 600_000 },
  async (t) => {
    const tmp = tempDir(t, 'sharder-pack-');

    // npm pack runs `prepack` (a clean build of dist/); the tarball lands in tmp.
    const pack = spawnSync('npm', ['pack', '--pack-destination', tmp, '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 180_000,
    });
    assert.equal(pack.status, 0, pack.stderr);
    const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as [
      { filename: string; files: { path: string }[] },
    ];
    assert.equal(info.filename, `${PKG.name}-${PKG.version}.tgz`);
    const files = info.files.map((f) => f.path).sort();
    const allowed =
      /^(bin\/sharder\.js|dist\/.+\.js|systemd\/sharder\.(service|yml)|nginx\/[^/]+|sharder\.yml|README\.md|SECURITY\.md|docs\/[^/]+\.(?:md|yaml)|LICENSE|CHANGELOG\.md|package\.json)$/;
    assert.deepEqual(
      files.filter((f) => !allowed.test(f)),
      [],
      'only compiled JavaScript, examples, nginx/systemd files and docs',
    );
    for (const needed of [
      'bin/sharder.js',
      'dist/cli/run.js',
      'dist/store/sqlite/index.js',
      'systemd/sharder.service',
      'systemd/sharder.yml',
      'sharder.yml',
      'LICENSE',
      'CHANGELOG.md',
      'README.md',
    ]) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }

    // The guide, followed as written, under a temporary root instead of /.
    const guideText = readFileSync(join(ROOT, 'docs', 'deploying.md'), 'utf8');
    const blocks = testedBlocks(guideText);
    assert.equal(blocks.length, 2, 'the install and configure steps are marked as tested');
    assert.match(
      blocks[0]!,
      new RegExp(`^VERSION=${PKG.version.replaceAll('.', '\\.')}$`, 'm'),
      'the guide installs the current version',
    );
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${join(root, 'usr/local/bin')}:${process.env.PATH}`,
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
    };
    const guide = spawnSync('bash', ['-euo', 'pipefail', '-c', underRoot(blocks.join('\n'), root)], {
      cwd: tmp,
      env,
      encoding: 'utf8',
      timeout: 420_000,
    });
    assert.equal(guide.status, 0, `${guide.stdout}\n${guide.stderr}`);
    assert.doesNotMatch(guide.stderr, /npm (warn|error)/i, 'the install prints no warning');
    assert.match(
      guide.stdout,
      new RegExp(`^${PKG.version.replaceAll('.', '\\.')}$`, 'm'),
      'sharder --version prints the package version',
    );
    assert.match(
      guide.stdout,
      /sharder\.yml: OK \(hub: 3 buckets\)/,
      'check-config accepts the installed /etc configuration',
    );

    // Production dependencies only: no TypeScript compiler or test tools were installed.
    const prefix = join(root, 'opt/sharder', PKG.version);
    const installed = join(prefix, 'node_modules/sharder');
    // …except what a production dependency requires as a peer (mysql2 asks for @types/node: types only, nothing runs).
    const peers = new Set(
      Object.keys(PKG.dependencies).flatMap((dep) => {
        const p = JSON.parse(readFileSync(join(prefix, 'node_modules', dep, 'package.json'), 'utf8')) as {
          peerDependencies?: Record<string, string>;
          peerDependenciesMeta?: Record<string, { optional?: boolean }>;
        };
        return Object.keys(p.peerDependencies ?? {}).filter((name) => !p.peerDependenciesMeta?.[name]?.optional);
      }),
    );
    for (const dev of Object.keys(PKG.devDependencies))
      if (!peers.has(dev))
        assert.equal(existsSync(join(prefix, 'node_modules', dev)), false, `${dev} (dev) is not installed`);
    for (const dep of Object.keys(PKG.dependencies))
      assert.ok(existsSync(join(prefix, 'node_modules', dep)), `${dep} is installed`);
    assert.equal(existsSync(join(installed, 'src')), false);
    // Installing the tarball runs none of its scripts, and nothing was compiled.
    const shipped = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.deepEqual(
      Object.keys(shipped.scripts).filter((s) => /^(pre|post)?(install|prepare)$/.test(s)),
      [],
    );
    assert.equal(
      existsSync(join(prefix, 'node_modules/better-sqlite3/build')),
      false,
      'better-sqlite3 uses its shipped binary',
    );

    // npx sharder --help, from the install folder.
    const help = spawnSync('npx', ['--no-install', 'sharder', '--help'], {
      cwd: prefix,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: sharder COMMAND/m);
    assert.match(help.stdout, /^ {2}backup /m);

    // The installed unit's ExecStart, with the paths of the temporary root.
    const unit = parseUnit(
      readFileSync(join(root, 'opt/sharder/current/node_modules/sharder/systemd/sharder.service'), 'utf8'),
    ).get('Service')!;
    const execStart = underRoot(unit.get('ExecStart')!.at(-1)!, root).split(' ');
    assert.equal(execStart[0], '/usr/bin/node');
    const stateDir = join(root, 'var/lib/sharder');
    mkdirSync(stateDir, { recursive: true });
    // Free ports for both listeners: a fixed port (8889 is the control default) may be taken.
    const serverEnv = {
      ...env,
      SHARDER_LISTEN: '127.0.0.1:0',
      SHARDER_CONTROL_LISTEN: '127.0.0.1:0',
      SHARDER_DATABASE: `sqlite:${join(stateDir, 'sharder.db')}`,
    };
    const viaUnit = await startServer(t, [process.execPath, ...execStart.slice(1)], { cwd: stateDir, env: serverEnv });
    const a = await get(`${viaUnit.url}/auth`, { REMOTE_USER: 'alice' });
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-shard-bucket'], 'hub-0');
    assert.equal(a.headers['set-cookie'], 'hub=hub-0; Path=/; HttpOnly; SameSite=Lax; Secure');
    assert.equal(await viaUnit.stop(), 0);
    assert.ok(existsSync(join(stateDir, 'sharder.db')));

    // The Docker image's entry command is the same program and arguments (the image installs
    // the tarball under /opt/sharder, the VM under /opt/sharder/VERSION).
    const runtime = parseDockerfile(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8')).at(-1)!;
    const image = [...execForm(runtime, 'ENTRYPOINT')!, ...execForm(runtime, 'CMD')!];
    assert.deepEqual(
      image.map((a) => a.replace('/opt/sharder/', '/opt/sharder/current/')),
      ['node', ...unit.get('ExecStart')!.at(-1)!.split(' ').slice(1)],
    );
    const viaImage = await startServer(
      t,
      [
        process.execPath,
        ...underRoot(
          image
            .slice(1)
            .map((a) => a.replace('/opt/sharder/', '/opt/sharder/current/'))
            .join(' '),
          root,
        ).split(' '),
      ],
      { cwd: stateDir, env: serverEnv },
    );
    const again = await get(`${viaImage.url}/auth`, { REMOTE_USER: 'alice' });
    assert.equal(again.headers['x-shard-bucket'], 'hub-0', 'the same database, the same answer');
    assert.equal((await get(`${viaImage.url}/auth`, { REMOTE_USER: 'bob' })).headers['x-shard-bucket'], 'hub-1');
    assert.equal(await viaImage.stop(), 0);

    // `sharder serve` in an empty folder with a configuration file written there.
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeFileSync(
      join(empty, 'sharder.yml'),
      stringify({
        listen: '127.0.0.1:0',
        control_listen: '127.0.0.1:0',
        log: { level: 'info' },
        kinds: { hub: { buckets: bucketsRaw() } },
      }),
    );
    const plain = await startServer(t, ['sharder', 'serve'], { cwd: empty, env });
    const c = await get(`${plain.url}/auth`, { REMOTE_USER: 'carol' });
    assert.equal(c.status, 200);
    assert.equal(c.headers['x-shard-bucket'], 'hub-0');
    assert.equal(await plain.stop(), 0);
    assert.ok(existsSync(join(empty, 'data/sharder.db')), 'the default SQLite file is created in the working folder');
  },
);

test('sharder --version prints the version in package.json', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/run.ts'), '--version'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${PKG.version}\n`);
  assert.match(
    readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8'),
    new RegExp(`^## \\[${PKG.version.replaceAll('.', '\\.')}\\] `, 'm'),
    'CHANGELOG.md has an entry for the version',
  );
});
