/**
 * `sharder nginx-config`: what it renders from sharder.yml, what it refuses (nothing may be
 * injected into nginx syntax), and `nginx -t` on every shipped configuration and on rendered ones.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readConfigFile } from '../../src/config/load.js';
import type { Config, RawConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { renderNginxConfig } from '../../src/nginx/render.js';
import { ConfigError } from '../../src/errors.js';
import {
  edit,
  enableAuthCache,
  httpPreamble,
  mainPreamble,
  NGINX_SRC,
  nginxPrefix,
  nginxSkip,
  nginxTest,
  shippedMainConf,
} from '../helpers/nginx.js';
import { ROOT, runCli, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const config = (raw: RawConfig, file = 'sharder.yml'): Config =>
  validateConfig({ listen: '127.0.0.1:8888', ...raw }, file);
const kinds = (...buckets: Record<string, unknown>[]): RawConfig => ({ kinds: { hub: { buckets } } });

/** Every problem of a ConfigError as "key: message". */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.key}: ${p.message}`);
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('rendering', () => {
  test('the shipped sharder-upstreams.conf is the rendering of the shipped sharder.yml', () => {
    const shipped = validateConfig(readConfigFile(join(ROOT, 'sharder.yml')), 'sharder.yml');
    assert.equal(renderNginxConfig(shipped).text, readFileSync(join(NGINX_SRC, 'sharder-upstreams.conf'), 'utf8'));
  });

  test('an upstream per bucket, draining ones included, and the maps; https gets scheme and TLS name', () => {
    const { text, warnings } = renderNginxConfig(
      config(
        kinds(
          { name: 'hub-0', upstream: 'http://10.0.0.10:8000' },
          { name: 'hub-1', upstream: 'https://Hub1.Example.org', state: 'draining' },
          { name: 'hub-2', upstream: 'http://[fd00::2]:8000/' },
          { name: 'hub-3', upstream: 'http://hub_3' },
        ),
      ),
    );
    assert.deepEqual(warnings, []);
    assert.equal(
      text,
      `# Rendered by \`sharder nginx-config\` from sharder.yml (kind "hub"). Do not edit:
# change sharder.yml, render again, then \`nginx -t && nginx -s reload\`.
# The sharder reads the identity from the REMOTE_USER header: sharder-auth.conf must send it there.

# The sharder itself: the auth_request target.
upstream sharder {
    server 127.0.0.1:8888;
    keepalive 32;
}

# One upstream per bucket of kind "hub" (draining buckets too: their users stay).
upstream sharder_hub_hub-0 {
    server 10.0.0.10:8000;
    keepalive 16;
}
upstream sharder_hub_hub-1 {
    server hub1.example.org:443;
    keepalive 16;
}
upstream sharder_hub_hub-2 {
    server [fd00::2]:8000;
    keepalive 16;
}
upstream sharder_hub_hub-3 {
    server hub_3:80;
    keepalive 16;
}

# X-Shard-Bucket (from the auth subrequest) -> upstream, scheme and TLS name.
map $sharder_bucket $sharder_upstream {
    default  sharder_unknown_bucket;
    hub-0    sharder_hub_hub-0;
    hub-1    sharder_hub_hub-1;
    hub-2    sharder_hub_hub-2;
    hub-3    sharder_hub_hub-3;
}
map $sharder_bucket $sharder_upstream_scheme {
    default  http;
    hub-1    https;
}
map $sharder_bucket $sharder_upstream_host {
    default  "";
    hub-1    hub1.example.org;
}
`,
    );
  });

  test('a bucket without upstream is skipped with a comment and a warning', () => {
    const { text, warnings } = renderNginxConfig(
      config(kinds({ name: 'hub-0', upstream: 'http://10.0.0.10:8000' }, { name: 'spare' })),
    );
    assert.match(text, /^# bucket spare: no upstream in sharder\.yml; nginx cannot route its users \(they get 502\)$/m);
    assert.doesNotMatch(text, /sharder_hub_spare/);
    assert.deepEqual(warnings, ['bucket spare of kind hub has no upstream: nginx cannot route its users']);
  });

  test('bucket names that are map keywords are escaped', () => {
    const { text } = renderNginxConfig(
      config(
        kinds(
          { name: 'default', upstream: 'http://10.0.0.1:80' },
          { name: 'include', upstream: 'http://10.0.0.2:80' },
          { name: 'Volatile', upstream: 'http://10.0.0.3:80' },
          { name: 'hostnames', upstream: 'http://10.0.0.4:80' },
        ),
      ),
    );
    for (const n of ['default', 'include', 'Volatile', 'hostnames'])
      assert.match(text, new RegExp(`^ {4}\\\\${n} +sharder_hub_${n};$`, 'm'));
  });

  test('where nginx reaches the sharder: listen (wildcards mean this host), or --sharder, several allowed', () => {
    const servers = (c: Config, sharders?: string[]) =>
      [...renderNginxConfig(c, { sharders }).text.matchAll(/^ {4}server (.+);$/gm)]
        .map((m) => m[1])
        .slice(0, sharders?.length ?? 1);
    const k = kinds({ name: 'h', upstream: 'http://10.0.0.1:80' });
    assert.deepEqual(servers(config({ ...k, listen: '0.0.0.0:8888' })), ['127.0.0.1:8888']);
    assert.deepEqual(servers(config({ ...k, listen: '[::]:8888' })), ['[::1]:8888']);
    assert.deepEqual(servers(config({ ...k, listen: '10.1.2.3:7000' })), ['10.1.2.3:7000']);
    assert.deepEqual(
      servers(config({ ...k, listen: '127.0.0.1:0' }), ['10.0.0.5:8888', 'sharder-2.internal:8888', '[fd00::5]:8888']),
      ['10.0.0.5:8888', 'sharder-2.internal:8888', '[fd00::5]:8888'],
    );
  });

  test('rendering is deterministic', () => {
    const c = config(
      kinds({ name: 'a', upstream: 'http://10.0.0.1:80' }, { name: 'b', upstream: 'https://b.example' }),
    );
    assert.equal(renderNginxConfig(c).text, renderNginxConfig(c).text);
  });

  const refused: [string, RawConfig, { kind?: string; sharders?: string[] }, string[]][] = [
    [
      'an upstream with a path',
      kinds({ name: 'hub-0', upstream: 'http://10.0.0.1:8000/jupyter' }),
      {},
      [
        'kinds.hub.buckets[0].upstream: has the path "/jupyter": nginx passes each request\'s URI to the hub unchanged, so the upstream must be scheme://host:port (set the hub\'s base_url instead)',
      ],
    ],
    [
      'names differing only in case',
      kinds({ name: 'Hub-A', upstream: 'http://10.0.0.1:80' }, { name: 'hub-a', upstream: 'http://10.0.0.2:80' }),
      {},
      [
        'kinds.hub.buckets[1].name: "hub-a" differs from "Hub-A" (buckets[0]) only in letter case: nginx ' +
          'matches bucket names ignoring case, so rename one',
      ],
    ],
    [
      'listen port 0 without --sharder',
      { ...kinds({ name: 'h', upstream: 'http://10.0.0.1:80' }), listen: '127.0.0.1:0' },
      {},
      ['listen: has port 0, so nginx cannot know where the sharder listens: pass --sharder HOST:PORT'],
    ],
    [
      'a --sharder that is not HOST:PORT',
      kinds({ name: 'h', upstream: 'http://10.0.0.1:80' }),
      { sharders: ['10.0.0.1:8888;include /etc/passwd', '10.0.0.1'] },
      [
        '--sharder: "10.0.0.1:8888;include /etc/passwd" is not HOST:PORT with a port other than 0',
        '--sharder: "10.0.0.1" is not HOST:PORT with a port other than 0',
      ],
    ],
  ];
  for (const [name, raw, opts, expected] of refused) {
    test(`refused: ${name}`, () => {
      assert.deepEqual(
        problems(() => renderNginxConfig(config(raw), opts)),
        expected,
      );
    });
  }

  test('refused: an unknown kind', () => {
    assert.deepEqual(
      problems(() => renderNginxConfig(config(kinds({ name: 'h' })), { kind: 'home' })),
      ['kinds: has no kind "home" (have: hub)'],
    );
  });

  test('injection is refused even when the configuration did not come through validation', () => {
    const valid = config(kinds({ name: 'hub-0', upstream: 'http://10.0.0.1:80' }));
    const forged = (bucket: Record<string, unknown>): Config => ({
      ...valid,
      kinds: new Map([
        ['hub', { name: 'hub', buckets: [{ name: 'hub-0', upstream: null, weight: 1, state: 'active', ...bucket }] }],
      ]),
    });
    assert.deepEqual(
      problems(() => renderNginxConfig(forged({ upstream: 'http://10.0.0.1;}upstream{evil:80' }))),
      [
        'kinds.hub.buckets[0].upstream: host "10.0.0.1;}upstream{evil" cannot be written into nginx ' +
          'configuration: use a host name or IP address',
      ],
    );
    assert.deepEqual(
      problems(() => renderNginxConfig(forged({ upstream: 'http://$host:80' }))),
      [
        'kinds.hub.buckets[0].upstream: host "$host" cannot be written into nginx configuration: use a host ' +
          'name or IP address',
      ],
    );
    assert.deepEqual(
      problems(() => renderNginxConfig(forged({ name: 'a;include /etc/passwd;', upstream: 'http://10.0.0.1' }))),
      ['kinds.hub.buckets[0].name: "a;include /etc/passwd;" cannot be written into nginx configuration'],
    );
  });
});

/** A config file name that, copied raw into a comment, would end it and add nginx directives. */
const HOSTILE_NAME =
  'sharder.yml\r\nupstream evil { server 127.0.0.1:1; }\n\u2028map $host $evil { default 1; }\n#.yml';

describe('the config file path in comments', () => {
  test('a path with newlines and directive-looking text stays inside its comment, quoted', () => {
    const file = `/etc/sharder/${HOSTILE_NAME}`;
    const { text } = renderNginxConfig(
      config(kinds({ name: 'hub-0', upstream: 'http://10.0.0.1:8000' }, { name: 'spare' }), file),
    );
    for (const l of text.split('\n'))
      if (/evil/.test(l)) assert.match(l, /^#/, `outside a comment: ${JSON.stringify(l)}`);
    assert.ok(!/[\r\u2028]/.test(text), 'no carriage return or line separator is copied');
    const quoted = JSON.stringify(file).replace('\u2028', '\\u2028');
    assert.ok(
      text.startsWith(`# Rendered by \`sharder nginx-config\` from ${quoted} (kind "hub"). Do not edit:\n`),
      text.split('\n')[0],
    );
    assert.ok(text.includes(`\n# bucket spare: no upstream in ${quoted}; nginx`), text);
    // A plain path is written as it is (the shipped rendering does not change).
    assert.match(
      renderNginxConfig(config(kinds({ name: 'h', upstream: 'http://10.0.0.1' }), '/etc/sharder/sharder.yml')).text,
      /^# Rendered by `sharder nginx-config` from \/etc\/sharder\/sharder\.yml \(kind/,
    );
  });
});

describe('upstream validation (sharder.yml)', () => {
  const cases: [string, string][] = [
    [
      'http://10.0.0.1;}upstream{evil:80',
      'host "10.0.0.1;}upstream{evil" is not a host name or IP address (letters, digits, ".", "-", "_")',
    ],
    ['http://a$b:80', 'host "a$b" is not a host name or IP address (letters, digits, ".", "-", "_")'],
    ['http://a%3Bb', 'host "a;b" is not a host name or IP address (letters, digits, ".", "-", "_")'],
    ["http://a'b", 'host "a\'b" is not a host name or IP address (letters, digits, ".", "-", "_")'],
  ];
  for (const [upstream, message] of cases) {
    test(`refused: ${upstream}`, () => {
      assert.deepEqual(
        problems(() => config(kinds({ name: 'hub-0', upstream }))),
        [`kinds.hub.buckets[0].upstream: ${message}`],
      );
    });
  }
  test('accepted: names, IPv4, IPv6, container names', () => {
    for (const upstream of [
      'http://hub.example.org',
      'https://10.0.0.1:8443',
      'http://[fd00::1]:8000',
      'http://jupyterhub_1:8000',
    ])
      config(kinds({ name: 'h', upstream }));
  });
});

describe('sharder nginx-config (CLI)', () => {
  test('prints the rendering; --output writes it atomically and says what to run next', async (t) => {
    const dir = tempDir(t);
    const file = writeConfig(dir, {
      listen: '127.0.0.1:8888',
      ...kinds({ name: 'hub-0', upstream: 'http://10.0.0.1:8000' }, { name: 'spare' }),
    });
    const printed = await runCli(['nginx-config', '--config', file]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, renderNginxConfig(validateConfig(readConfigFile(file), file)).text);
    assert.equal(
      printed.stderr,
      'sharder: warning: bucket spare of kind hub has no upstream: nginx cannot route its users\n',
    );

    const out = join(dir, 'sharder-upstreams.conf');
    writeFileSync(out, 'old');
    const written = await runCli([
      'nginx-config',
      '--config',
      file,
      '-o',
      out,
      '--sharder',
      '10.0.0.9:8888',
      '--sharder',
      '10.0.0.10:8888',
    ]);
    assert.equal(written.code, 0, written.stderr);
    assert.equal(written.stdout, '');
    assert.match(written.stderr, new RegExp(`wrote ${out}; now run: nginx -t && nginx -s reload`));
    assert.match(
      readFileSync(out, 'utf8'),
      /upstream sharder \{\n {4}server 10\.0\.0\.9:8888;\n {4}server 10\.0\.0\.10:8888;\n/,
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
      'no temporary file left behind',
    );
  });

  test('an injection attempt in sharder.yml: status 2, the file and key named, nothing written', async (t) => {
    const dir = tempDir(t);
    const file = writeConfig(dir, {
      listen: '127.0.0.1:8888',
      ...kinds({ name: 'hub-0', upstream: 'http://10.0.0.1;}upstream{evil:80' }),
    });
    const out = join(dir, 'out.conf');
    const r = await runCli(['nginx-config', '--config', file, '--output', out]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `sharder: invalid configuration (1 problem):\n  ${file}: kinds.hub.buckets[0].upstream: host ` +
        '"10.0.0.1;}upstream{evil" is not a host name or IP address (letters, digits, ".", "-", "_")\n',
    );
    assert.equal(existsSync(out), false);
  });

  test('an output that cannot be written: status 1 with a coded error', async (t) => {
    const dir = tempDir(t);
    const file = writeConfig(dir, {
      listen: '127.0.0.1:8888',
      ...kinds({ name: 'hub-0', upstream: 'http://10.0.0.1:8000' }),
    });
    const r = await runCli(['nginx-config', '--config', file, '--output', join(dir, 'missing', 'x.conf')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `sharder: cannot write ${join(dir, 'missing', 'x.conf')}: ENOENT [SHARD_ERR_OUTPUT]\n`);
  });

  test('listed in sharder --help', async () => {
    const r = await runCli(['--help']);
    assert.match(r.stdout, /^ {2}nginx-config +render the nginx upstreams and bucket map/m);
  });
});

describe('nginx -t accepts every shipped configuration and rendered ones', { skip: nginxSkip }, () => {
  const assertOk = (dir: string, conf: string, text: string): void => {
    writeFileSync(join(dir, conf), text);
    const r = nginxTest(dir, join(dir, conf));
    assert.ok(r.ok, `${conf}:\n${r.output}\n--- config:\n${text}`);
  };
  const harness = (dir: string, http: string): string =>
    `${mainPreamble(dir)}\nhttp {\n${httpPreamble(dir)}\ninclude sharder/sharder-http.conf;\n${http}\n}\n`;

  test('nginx.conf (full example, auth_basic) with the shipped sharder-upstreams.conf', (t) => {
    const dir = nginxPrefix(t);
    writeFileSync(join(dir, 'htpasswd'), 'alice:{PLAIN}x\n');
    assertOk(dir, 'nginx.conf', shippedMainConf(dir, 8080));
  });

  test('sharder-server.conf in an existing server block, with and without the auth cache', (t) => {
    const dir = nginxPrefix(t);
    const server =
      'server { listen 127.0.0.1:8080; server_name hub.example.edu; set $sharder_identity $remote_user; ' +
      'include sharder/sharder-server.conf; }';
    assertOk(dir, 'plain.conf', harness(dir, server));
    enableAuthCache(dir);
    assertOk(dir, 'cached.conf', harness(dir, server));
  });

  test('oauth2-proxy.conf', (t) => {
    const dir = nginxPrefix(t);
    const conf = edit(
      readFileSync(join(dir, 'sharder', 'oauth2-proxy.conf'), 'utf8'),
      /^\s*listen \[::\]:80;\n/m,
      '',
      'listen [::]:80',
    );
    writeFileSync(join(dir, 'sharder', 'oauth2-proxy.conf'), edit(conf, /listen 80;/, 'listen 127.0.0.1:8080;'));
    assertOk(dir, 'oauth2.conf', harness(dir, 'include sharder/oauth2-proxy.conf;'));
  });

  test('a rendering with https, IPv6, host names, keyword bucket names and a skipped bucket', async (t) => {
    const dir = nginxPrefix(t);
    const file = writeConfig(tempDir(t), {
      listen: '0.0.0.0:8888',
      ...kinds(
        { name: 'hub-0', upstream: 'http://127.0.0.1:8000' },
        { name: 'default', upstream: 'https://localhost:8443' },
        { name: 'include', upstream: 'http://[::1]:8001', state: 'draining' },
        { name: 'hub.3', upstream: 'http://localhost' },
        { name: 'spare' },
      ),
    });
    const r = await runCli([
      'nginx-config',
      '--config',
      file,
      '--output',
      join(dir, 'sharder', 'sharder-upstreams.conf'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertOk(
      dir,
      'rendered.conf',
      harness(
        dir,
        'server { listen 127.0.0.1:8080; set $sharder_identity $remote_user; include sharder/sharder-server.conf; }',
      ),
    );
  });

  test('a rendering from a config file whose path holds newlines and directives: nginx -t passes, nothing was added', async (t) => {
    const dir = nginxPrefix(t);
    const file = writeConfig(
      tempDir(t),
      { listen: '127.0.0.1:8888', ...kinds({ name: 'hub-0', upstream: 'http://127.0.0.1:8000' }, { name: 'spare' }) },
      HOSTILE_NAME,
    );
    const out = join(dir, 'sharder', 'sharder-upstreams.conf');
    const r = await runCli(['nginx-config', '--config', file, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    const rendered = readFileSync(out, 'utf8');
    assert.equal(
      rendered
        .split('\n')
        .filter((l) => l.includes('evil'))
        .every((l) => l.startsWith('#')),
      true,
      rendered,
    );
    assertOk(
      dir,
      'hostile-path.conf',
      harness(
        dir,
        'server { listen 127.0.0.1:8080; set $sharder_identity $remote_user; include sharder/sharder-server.conf; }',
      ),
    );
    // Had the path escaped its comment, nginx would already know an upstream "evil" and
    // refuse a second one ("duplicate upstream").
    assertOk(
      dir,
      'probe.conf',
      harness(
        dir,
        'upstream evil { server 127.0.0.1:2; }\nserver { listen 127.0.0.1:8080; set $sharder_identity ' +
          '$remote_user; include sharder/sharder-server.conf; }',
      ),
    );
  });
});
