/**
 * deploy/: what can be checked without Docker (which cannot run on our machines): the compose
 * file parses and everything it names exists, start-up is ordered by health checks, secrets
 * come from the git-ignored env file, the Dockerfile is multi-stage, non-root and checks health
 * with node, and the compose nginx configuration passes `nginx -t` (host names that resolve only
 * inside the stack replaced by 127.0.0.1). The image's entry command itself is run by
 * test/e2e/package.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseDocument, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { execForm, parseDockerfile } from '../helpers/deploy.js';
import { needs } from '../helpers/env.js';
import { ROOT, runCli } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const DEPLOY = join(ROOT, 'deploy');
const composeText = readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  env_file?: unknown;
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test: string[] };
  entrypoint?: string[];
  command?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  ports?: string[];
}
const compose = parse(composeText) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  networks: Record<string, { ipam: { config: { subnet: string }[] } }>;
};

/** Files the operator creates before the first start (git-ignored, documented in env.example). */
const OPERATOR_FILES = ['./htpasswd'];

/** Host paths of bind mounts (relative to deploy/), named volumes excluded. */
function bindSources(): { service: string; source: string }[] {
  const out: { service: string; source: string }[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const v of svc.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (source.startsWith('.') || source.startsWith('/')) out.push({ service: name, source });
    }
  }
  return out;
}

describe('deploy/compose.yaml', () => {
  test('parses as YAML without errors or duplicate keys', () => {
    const doc = parseDocument(composeText, { uniqueKeys: true });
    assert.deepEqual(doc.errors, []);
    assert.deepEqual(Object.keys(compose.services).sort(), ['nginx', 'nginx-config', 'postgres', 'sharder']);
  });

  test('every file it mounts or builds from exists', () => {
    const sources = bindSources().filter((s) => !OPERATOR_FILES.includes(s.source));
    assert.ok(sources.length >= 2);
    for (const { service, source } of sources)
      assert.ok(existsSync(resolve(DEPLOY, source)), `${service}: ${source} exists`);
    const build = compose.services.sharder!.build!;
    assert.ok(existsSync(resolve(DEPLOY, build.context, build.dockerfile)), 'the Dockerfile');
    assert.ok(
      existsSync(resolve(DEPLOY, build.context, 'package-lock.json')),
      'the build context is the repository root',
    );
  });

  test('files the operator creates are git-ignored and explained in env.example', () => {
    const ignored = readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n');
    const example = readFileSync(join(DEPLOY, 'env.example'), 'utf8');
    for (const f of OPERATOR_FILES) {
      assert.ok(
        bindSources().some((s) => s.source === f),
        `${f} is mounted`,
      );
      assert.ok(ignored.includes(`deploy/${f.slice(2)}`), `${f} is git-ignored`);
      assert.match(example, new RegExp(`deploy/${f.slice(2)}`), `${f} is explained`);
    }
  });

  test('nginx gets the shipped nginx/ files of the image, with upstreams rendered over the example', () => {
    const cmd = compose.services['nginx-config']!.command!.join(' ');
    assert.match(cmd, /cp -r \/opt\/sharder\/node_modules\/sharder\/nginx\/\. \/var\/cache\/sharder-nginx\//);
    assert.match(
      cmd,
      /nginx-config --config \/etc\/sharder\/sharder\.yml --sharder sharder:8888 --output \/var\/cache\/sharder-nginx\/sharder-upstreams\.conf/,
    );
    assert.ok(compose.services.nginx!.volumes!.includes('nginx-rendered:/etc/nginx/sharder:ro'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('nginx/'), 'the package (and so the image) ships nginx/');
    for (const m of readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8').matchAll(/^\s*include (sharder\/\S+);/gm)) {
      assert.ok(existsSync(join(ROOT, 'nginx', m[1]!.slice('sharder/'.length))), `${m[1]} is shipped in nginx/`);
    }
  });

  test('start-up is ordered by health checks, never by sleeping', () => {
    let conditions = 0;
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const [dep, spec] of Object.entries(svc.depends_on ?? {})) {
        assert.ok(
          spec.condition === 'service_healthy' || spec.condition === 'service_completed_successfully',
          `${name} → ${dep}: ${spec.condition}`,
        );
        if (spec.condition === 'service_healthy')
          assert.ok(compose.services[dep]!.healthcheck, `${dep} has a health check`);
        conditions++;
      }
      assert.doesNotMatch(
        JSON.stringify([svc.command, svc.entrypoint, svc.healthcheck]),
        /\bsleep\b/,
        `${name} does not sleep`,
      );
    }
    assert.ok(conditions >= 4);
    assert.equal(compose.services.sharder!.depends_on!.postgres!.condition, 'service_healthy');
    assert.equal(compose.services.nginx!.depends_on!.sharder!.condition, 'service_healthy');
    assert.match(
      compose.services.sharder!.healthcheck!.test.join(' '),
      /^CMD node -e fetch\('http:\/\/127\.0\.0\.1:8888\/readyz'\)/,
    );
  });

  test('secrets come from the git-ignored env file, whose example names every variable', () => {
    const wanted = new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}/g)].map((m) => m[1]!));
    assert.ok(wanted.has('POSTGRES_PASSWORD'));
    const example = readFileSync(join(DEPLOY, 'env.example'), 'utf8');
    for (const v of wanted) assert.match(example, new RegExp(`^${v}=$`, 'm'), `env.example has an empty ${v}=`);
    assert.match(compose.services.postgres!.environment!.POSTGRES_PASSWORD!, /^\$\{POSTGRES_PASSWORD:\?/);
    assert.match(compose.services.sharder!.environment!.PGPASSWORD!, /^\$\{POSTGRES_PASSWORD:\?/);
    assert.doesNotMatch(composeText, /^\s*-?\s*\w*password\w*\s*[:=]\s*(?!\$\{)\S/im, 'no literal password');
    const ignored = spawnSync('git', ['check-ignore', '-q', 'deploy/.env'], { cwd: ROOT });
    assert.equal(ignored.status, 0, 'git ignores deploy/.env');
    const exampleIgnored = spawnSync('git', ['check-ignore', '-q', 'deploy/env.example'], { cwd: ROOT });
    assert.equal(exampleIgnored.status, 1, 'git keeps deploy/env.example');
  });

  test('the database lives in a named volume; only nginx publishes a port', () => {
    assert.ok(compose.services.postgres!.volumes!.includes('postgres-data:/var/lib/postgresql/data'));
    assert.ok('postgres-data' in compose.volumes);
    const publishing = Object.entries(compose.services)
      .filter(([, s]) => s.ports?.length)
      .map(([n]) => n);
    assert.deepEqual(publishing, ['nginx']);
  });

  test('the sharder trusts the identity header from nginx only, on the port everything else uses', () => {
    const config = loadConfig({ file: join(DEPLOY, 'sharder.yml'), env: {} });
    const nginxAddress = compose.services.nginx!.networks!.sharder!.ipv4_address!;
    assert.deepEqual(config.identity.trustedProxies, [`${nginxAddress}/32`]);
    assert.equal(config.listen.port, 8888);
    assert.equal(config.database.backend, 'postgres');
    // nginx's upstream to the sharder is rendered by the nginx-config service.
    assert.match(compose.services['nginx-config']!.command!.join(' '), /--sharder sharder:8888 /);
    const subnet = compose.networks.sharder!.ipam.config[0]!.subnet;
    assert.equal(subnet, '172.28.0.0/24');
    assert.ok(nginxAddress.startsWith('172.28.0.'));
  });

  test('its sharder configuration passes check-config', async () => {
    const r = await runCli(['check-config', '--config', join(DEPLOY, 'sharder.yml')]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('deploy/Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1)!;
  const build = stages[0]!;
  const runs = (s: typeof build): string =>
    s.instructions
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');

  test('multi-stage: the build stage compiles and installs the packed tarball without dev dependencies', () => {
    assert.ok(stages.length >= 2);
    assert.match(runs(build), /npm ci/);
    assert.match(runs(build), /npm run build/);
    assert.match(runs(build), /npm pack/);
    assert.match(runs(build), /npm install --prefix \/opt\/sharder --omit=dev .*sharder-\*\.tgz/);
    assert.ok(
      runtime.instructions.some((i) => i.op === 'COPY' && i.args === `--from=${build.name} /opt/sharder /opt/sharder`),
    );
    assert.doesNotMatch(runs(runtime), /npm (ci|install)/, 'the runtime stage installs nothing');
  });

  test('the runtime stage runs as a non-root user and checks /healthz with node', () => {
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.ok(user && user !== 'root' && user !== '0', `USER ${user}`);
    const hc = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!;
    const cmd = JSON.parse(hc.args.slice(hc.args.indexOf('CMD ') + 4)) as string[];
    assert.equal(cmd[0], 'node');
    assert.match(cmd.join(' '), /http:\/\/127\.0\.0\.1:8888\/healthz/);
    assert.doesNotMatch(hc.args, /curl|wget/);
    assert.ok(
      runtime.instructions.some((i) => i.op === 'ENV' && i.args === 'SHARDER_LISTEN=0.0.0.0:8888'),
      'the health check port is the listener',
    );
    assert.deepEqual(execForm(runtime, 'CMD'), ['serve', '--config', '/etc/sharder/sharder.yml']);
  });

  test('the build context leaves out dependencies, builds and secrets', () => {
    const ignore = readFileSync(join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', '.git', '.env', 'deploy/.env', '*.db']) assert.ok(ignore.includes(p), p);
  });
});

const nginxMissing =
  spawnSync('sh', ['-c', 'command -v nginx']).status === 0
    ? undefined
    : needs('nginx', 'nginx not found (apt-get install nginx-light)');

test(
  'nginx -t accepts the compose nginx configuration with the shipped files and rendered upstreams',
  { skip: nginxMissing },
  async (t) => {
    const dir = tempDir(t);
    // What the nginx-config service builds: the shipped nginx/ files, upstreams rendered over them.
    // The stack's host names resolve only inside it: point them at 127.0.0.1 for the check.
    const cfg = parse(readFileSync(join(DEPLOY, 'sharder.yml'), 'utf8')) as {
      kinds: Record<string, { buckets: { upstream?: string }[] }>;
    };
    for (const kind of Object.values(cfg.kinds))
      for (const b of kind.buckets) if (b.upstream) b.upstream = b.upstream.replace(/\/\/[^:/]+/, '//127.0.0.1');
    writeFileSync(join(dir, 'sharder.yml'), stringify(cfg));
    cpSync(join(ROOT, 'nginx'), join(dir, 'sharder'), { recursive: true });
    const rendered = await runCli([
      'nginx-config',
      '--config',
      join(dir, 'sharder.yml'),
      '--sharder',
      '127.0.0.1:8888',
      '--output',
      join(dir, 'sharder/sharder-upstreams.conf'),
    ]);
    assert.equal(rendered.code, 0, rendered.stderr);
    writeFileSync(join(dir, 'htpasswd'), 'alice:{PLAIN}x\n');
    const conf = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8')
      .replace('user nginx;', '')
      // The test's stdout is a pipe nginx cannot open by name; in the container it is the log.
      .replace('access_log /dev/stdout;', 'access_log off;')
      .replace('/etc/nginx/htpasswd', join(dir, 'htpasswd'))
      .replace(
        '/etc/nginx/mime.types',
        existsSync('/etc/nginx/mime.types') ? '/etc/nginx/mime.types' : join(ROOT, 'nginx/mime.types'),
      );
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const r = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
  },
);
