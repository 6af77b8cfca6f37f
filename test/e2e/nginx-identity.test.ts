/**
 * Who the user is, through a real nginx: for every shipped recipe (nginx/nginx.conf and
 * deploy/nginx.conf with auth_basic, nginx/oauth2-proxy.conf with a stand-in oauth2-proxy), a
 * client sends its own identity header in every spelling, before and after its credentials,
 * twice, and in pairs of spellings, over raw sockets so that nginx gets exactly those bytes. The
 * sharder must assign only the authenticated user and the hub (a real test hub) must receive
 * only the authenticated identity, in one REMOTE_USER header.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { whoami, type Seen } from '../helpers/hubs.js';
import { NGINX_SRC, nginxSkip, rawRequest, startAuthenticator, wsMessages, type RawReply } from '../helpers/nginx.js';
import { ROOT } from '../helpers/sharder.js';
import { basic, startStack, type Front, type Stack } from '../helpers/stack.js';
import type { HasAfter } from '../helpers/context.js';

/** The identity header as a client may spell it; nginx folds case, and `-` with `_` in $http_*. */
const SPELLINGS = ['REMOTE_USER', 'Remote-User', 'remote-user', 'REMOTE-USER', 'remote_user'] as const;
/** Never a user of any recipe: if it is ever stored or reaches a hub, a client chose its identity. */
const FORGED = 'mallory';

interface Spoof {
  name: string;
  /** Header lines sent before the credentials, and after them. */
  before: string[];
  after: string[];
}

/** Every spelling alone (before, after the credentials), each twice, and each ordered pair. */
function spoofs(): Spoof[] {
  const out: Spoof[] = [];
  for (const s of SPELLINGS) {
    out.push({ name: `${s} before`, before: [`${s}: ${FORGED}`], after: [] });
    out.push({ name: `${s} after`, before: [], after: [`${s}: ${FORGED}`] });
    out.push({ name: `${s} twice`, before: [`${s}: ${FORGED}`], after: [`${s}: bob`] });
    for (const o of SPELLINGS)
      if (o !== s) out.push({ name: `${s} then ${o}`, before: [`${s}: ${FORGED}`, `${o}: bob`], after: [] });
  }
  out.push({
    name: 'all spellings, both sides',
    before: SPELLINGS.map((s) => `${s}: ${FORGED}`),
    after: SPELLINGS.map((s) => `${s}: bob`),
  });
  // The user headers of authenticating proxies: never read, and never passed on to a hub.
  out.push({
    name: "X-Auth-Request-User (oauth2-proxy's answer header)",
    before: [`X-Auth-Request-User: ${FORGED}`],
    after: ['x-auth-request-user: bob'],
  });
  out.push({
    name: 'X-Forwarded-User and -Email',
    before: [`X-Forwarded-User: ${FORGED}`, `X-Forwarded-Email: ${FORGED}@example.org`],
    after: [],
  });
  return out;
}

/**
 * Header lines nginx may refuse (400) rather than parse: the property is the same, a refusal is
 * fine, a forged identity is not.
 */
const MALFORMED: Spoof[] = [
  { name: 'space before the colon', before: [`Remote-User : ${FORGED}`], after: [] },
  { name: 'tab before the colon', before: [`REMOTE_USER\t: ${FORGED}`], after: [] },
  { name: 'no space after the colon', before: [`Remote-User:${FORGED}`], after: [] },
  { name: 'obs-fold continuation line', before: ['X-Note: a', ` Remote-User: ${FORGED}`], after: [] },
  { name: 'NUL in the value', before: [`Remote-User: ${FORGED}\0alice`], after: [] },
  { name: 'name with a trailing underscore', before: [`REMOTE_USER_: ${FORGED}`], after: [] },
];

/** Header names that a proxy or a framework may take for the identity header. */
const isIdentityHeader = (name: string): boolean => name.toLowerCase().replaceAll('-', '_') === 'remote_user';

interface Recipe {
  name: string;
  /** Starts the stack; returns it with the credential header line of each user. */
  start: (t: HasAfter) => Promise<{ stack: Stack; credential: (user: string) => string; unauthenticated: number }>;
}

const basicRecipe = (name: string, front: Front): Recipe => ({
  name,
  async start(t) {
    const stack = await startStack(t, { front });
    return { stack, credential: (u) => `Authorization: ${basic(u)}`, unauthenticated: 401 };
  },
});

const RECIPES: Recipe[] = [
  basicRecipe('nginx/nginx.conf (auth_basic)', 'basic'),
  basicRecipe('deploy/nginx.conf (auth_basic)', 'deploy'),
  {
    name: "nginx/oauth2-proxy.conf (identity from oauth2-proxy's answer)",
    async start(t) {
      const auth = await startAuthenticator(t, { 'sess-alice-7f3a': 'alice', 'sess-bob-91c2': 'bob' });
      const stack = await startStack(t, { front: { oauth2: auth.port } });
      return {
        stack,
        credential: (u) => `Cookie: _oauth2_proxy=sess-${u}-${u === 'alice' ? '7f3a' : '91c2'}`,
        unauthenticated: 302,
      };
    },
  },
  // Defence in depth: an operator's own server{} that turned underscores_in_headers on still
  // sends the hub only the authenticated identity (sharder-route.conf overwrites every spelling).
  basicRecipe('sharder-server.conf in a server with underscores_in_headers on', {
    server:
      ' underscores_in_headers on;\n auth_basic "JupyterHub";\n auth_basic_user_file htpasswd;\n set ' +
      '$sharder_identity $remote_user;',
  }),
];

/** What the hub received, from its echo; the identity headers exactly as they arrived. */
function hubSaw(r: RawReply): { echo: Seen; identity: [string, string][] } {
  const echo = JSON.parse(r.body) as Seen;
  const identity: [string, string][] = [];
  for (let i = 0; i < echo.rawHeaders.length; i += 2)
    if (isIdentityHeader(echo.rawHeaders[i]!)) identity.push([echo.rawHeaders[i]!, echo.rawHeaders[i + 1]!]);
  return { echo, identity };
}

async function storedNames(stack: Stack): Promise<string[]> {
  return (await stack.sharder.sharder.store.list('hub', { limit: 1000 })).map((a) => a.name).sort();
}

/** Every place a recipe is written: the docs, the shipped nginx/ files, the compose stack's nginx. */
function recipeTexts(): { file: string; text: string }[] {
  const files = [
    'README.md',
    'docs/deploying.md',
    'SECURITY.md',
    'deploy/nginx.conf',
    ...readdirSync(NGINX_SRC)
      .filter((f) => f.endsWith('.conf'))
      .map((f) => `nginx/${f}`),
  ];
  return files.map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }));
}

test("every recipe takes the identity from nginx's own authentication or an auth_request answer, never from a request header", () => {
  const sources = new Map<string, string[]>();
  for (const { file, text } of recipeTexts()) {
    for (const m of text.matchAll(/\b(set|auth_request_set)\s+\$sharder_identity\s+([^;\s`]+)\s*;/g)) {
      const ok =
        (m[1] === 'set' && m[2] === '$remote_user') ||
        (m[1] === 'auth_request_set' && /^\$upstream_http_(?:[a-z0-9_]+|…)$/.test(m[2]!));
      assert.ok(ok, `${file}: "${m[0]}" takes the identity from something a client can send`);
      sources.set(file, [...(sources.get(file) ?? []), m[2]!]);
    }
    // What reaches the sharder and the hubs as the identity is $sharder_identity or nothing.
    for (const m of text.matchAll(/proxy_set_header\s+([\w-]+)\s+([^;]+);/g)) {
      if (isIdentityHeader(m[1]!)) assert.ok(m[2] === '$sharder_identity' || m[2] === '""', `${file}: "${m[0]}"`);
    }
    // As a directive (in a configuration, or a recipe in the docs); prose may name it.
    assert.doesNotMatch(
      text,
      file.endsWith('.conf') ? /^\s*underscores_in_headers\s+on\s*;/m : /underscores_in_headers\s+on\s*;/,
      `${file}: underscores_in_headers stays off (DESIGN.md, nginx)`,
    );
    // The docs name $http_remote_user as the example of what not to do; no configuration uses it.
    if (file.endsWith('.conf'))
      assert.doesNotMatch(
        text,
        /\$http_(remote_user|x_auth_request_user|x_forwarded_user)\b/,
        `${file}: a request header is never the identity`,
      );
  }
  // The test reads what it should: each recipe is found where it is written.
  assert.deepEqual(sources.get('nginx/nginx.conf'), ['$remote_user']);
  assert.deepEqual(sources.get('deploy/nginx.conf'), ['$remote_user']);
  assert.deepEqual(sources.get('nginx/oauth2-proxy.conf'), ['$upstream_http_x_auth_request_user']);
  assert.ok((sources.get('docs/deploying.md') ?? []).length >= 2, "the nginx guide's recipes are found");
});

describe(
  'identity through nginx: no byte a client sends becomes the identity (real nginx)',
  { skip: nginxSkip, concurrency: 1 },
  () => {
    for (const recipe of RECIPES) {
      test(`${recipe.name}: a client's identity headers, in any spelling, order or number, change nothing`, async (t) => {
        const { stack, credential, unauthenticated } = await recipe.start(t);
        const port = stack.nginx.ports[0]!;
        const host = 'Host: jupyter.example.edu';
        // alice and bob sign in normally: two users on two hubs.
        const hubOfUser = new Map<string, string>();
        for (const user of ['alice', 'bob']) {
          const r = await rawRequest(port, '/hub/', [host, credential(user)]);
          assert.equal(r.status, 200, `${user}: ${r.body}`);
          hubOfUser.set(user, r.header('x-hub')!);
          assert.deepEqual(hubSaw(r).identity, [['REMOTE_USER', user]]);
        }
        assert.notEqual(hubOfUser.get('alice'), hubOfUser.get('bob'));
        const requestsBefore = stack.hubs.map((h) => h.counts.requests);

        let routed = 0;
        for (const s of spoofs()) {
          const r = await rawRequest(port, `/user/alice/lab?case=${encodeURIComponent(s.name)}`, [
            host,
            ...s.before,
            credential('alice'),
            ...s.after,
          ]);
          assert.equal(r.status, 200, `${s.name}: ${r.body}`);
          assert.equal(r.header('x-hub'), hubOfUser.get('alice'), `${s.name}: routed to alice's hub`);
          const seen = hubSaw(r);
          assert.deepEqual(
            seen.identity,
            [['REMOTE_USER', 'alice']],
            `${s.name}: the hub gets alice, once, and no client copy`,
          );
          for (const h of ['x-auth-request-user', 'x-auth-request-email', 'x-forwarded-user', 'x-forwarded-email'])
            assert.equal(seen.echo.headers[h], undefined, `${s.name}: no ${h} reaches the hub`);
          routed++;
        }
        for (const s of MALFORMED) {
          const r = await rawRequest(port, '/hub/', [host, ...s.before, credential('alice'), ...s.after]);
          if (r.status === 200) {
            assert.equal(r.header('x-hub'), hubOfUser.get('alice'), s.name);
            assert.deepEqual(hubSaw(r).identity, [['REMOTE_USER', 'alice']], s.name);
            routed++;
          } else {
            assert.equal(r.status, 400, `${s.name}: refused as malformed, or routed as alice`);
          }
        }
        // A websocket (kernels, terminals) takes the same route: its hub names the identity it got.
        const line = credential('alice');
        const [name, value] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)];
        const ws = stack.nginx.url('/user/alice/api/kernels/k1/channels').replace('http:', 'ws:');
        const answers = await wsMessages(
          ws,
          { 'Remote-User': FORGED, REMOTE_USER: FORGED, 'X-Auth-Request-User': FORGED, [name]: value },
          ['whoami'],
        );
        assert.deepEqual(answers.map(whoami), [`${hubOfUser.get('alice')}:alice`]);
        // Without credentials no header gets anyone in, and the hubs never hear of it.
        for (const s of spoofs()) {
          const r = await rawRequest(port, '/hub/', [host, ...s.before, ...s.after]);
          assert.equal(r.status, unauthenticated, `${s.name} without credentials`);
          assert.equal(r.header('x-hub'), undefined, s.name);
        }
        for (const s of MALFORMED) {
          const r = await rawRequest(port, '/hub/', [host, ...s.before, ...s.after]);
          assert.ok(r.status === unauthenticated || r.status === 400, `${s.name} without credentials: ${r.status}`);
        }
        assert.deepEqual(
          await storedNames(stack),
          ['alice', 'bob'],
          `the sharder stored only the two users who signed in, never ${FORGED}`,
        );
        const perHub = stack.hubs.map((h, i) => h.counts.requests - requestsBefore[i]!);
        assert.deepEqual(
          perHub,
          stack.hubs.map((h) => (h.name === hubOfUser.get('alice') ? routed : 0)),
          "all of them on alice's hub, none on bob's",
        );
      });
    }

    test("why no recipe reads a request header: with underscores_in_headers on, a client's Remote-User stands in for a layer's REMOTE_USER", async (t) => {
      // The recipe the README documented until it was found spoofable: a layer in front of nginx
      // authenticates alice and appends REMOTE_USER after the client's own headers.
      const stack = await startStack(t, {
        front: { server: ' underscores_in_headers on;\n set $sharder_identity $http_remote_user;' },
      });
      const r = await rawRequest(stack.nginx.ports[0]!, '/hub/', [
        'Host: x',
        `Remote-User: ${FORGED}`,
        'REMOTE_USER: alice',
      ]);
      // nginx folds "-" with "_" and case, and $http_remote_user is the first: the client's.
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(hubSaw(r).identity, [['REMOTE_USER', FORGED]]);
      assert.deepEqual(await storedNames(stack), [FORGED]);
    });
  },
);
