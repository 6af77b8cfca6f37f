/**
 * The status page: who may see it, what the HTML holds (escaped), and the page itself in a
 * real headless Chromium (Debian's `chromium`, driven by playwright-core), at a desktop and a
 * phone size, without JavaScript, refreshing itself. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { request } from 'undici';
import type { RawConfig } from '../../src/config/types.js';
import { escapeHtml, renderStatus, targetShares, type StatusView } from '../../src/status/page.js';
import { isLoopback } from '../../src/http/trust.js';
import { needs } from '../helpers/env.js';
import { ROOT, startSharder, type Running } from '../helpers/sharder.js';
import type { HasAfter } from '../helpers/context.js';

const ADMIN = 'admin-token-0123456789abcdef';
const CHROMIUM = process.env.SHARDER_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const EVIL = '<script>alert(1)</script> & "quotes"';

const KINDS: RawConfig = {
  kind_header: 'X-Shard-Kind',
  kinds: {
    hub: { buckets: [{ name: 'hub-0', weight: 2 }, { name: 'hub-1' }, { name: 'hub-2', state: 'draining' }] },
    home: { buckets: [{ name: 'nfs-0' }, { name: 'nfs-1' }] },
  },
};

async function page(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; html: string; headers: Record<string, unknown> }> {
  const r = await request(url, { headers });
  return { status: r.statusCode, html: await r.body.text(), headers: r.headers };
}

/** A running sharder with users on every active bucket, one moved onto the draining one. */
async function populated(t: HasAfter, over: RawConfig = {}): Promise<Running> {
  const r = await startSharder(t, { admin: { token: ADMIN }, ...KINDS, ...over });
  for (let i = 0; i < 24; i++) assert.equal((await page(`${r.url}/auth`, { REMOTE_USER: `u${i}` })).status, 200);
  for (let i = 0; i < 5; i++)
    assert.equal((await page(`${r.url}/auth`, { REMOTE_USER: `h${i}`, 'X-Shard-Kind': 'home' })).status, 200);
  await r.sharder.ops.move({
    kind: 'hub',
    name: 'u0',
    to: 'hub-2',
    actor: 'cli:tester',
    reason: EVIL,
    skipHubCheck: true,
  });
  return r;
}

test('target shares: active buckets share what draining ones do not hold, by weight', () => {
  const t = targetShares([
    { state: 'active', weight: 2, count: 50 },
    { state: 'active', weight: 1, count: 30 },
    { state: 'draining', weight: 1, count: 20 },
  ]);
  assert.deepEqual(
    t.map((x) => (x === null ? null : Number(x.toFixed(4)))),
    [0.5333, 0.2667, null],
  );
  assert.deepEqual(
    targetShares([
      { state: 'active', weight: 1, count: 0 },
      { state: 'active', weight: 3, count: 0 },
    ]),
    [0.25, 0.75],
  );
  assert.deepEqual(targetShares([{ state: 'draining', weight: 1, count: 3 }]), [null]);
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.9'));
  assert.ok(!isLoopback('10.0.0.1') && !isLoopback('::ffff:10.0.0.1') && !isLoopback(undefined));
});

test('the page escapes every outside text and carries no script', () => {
  const view: StatusView = {
    generatedAt: Date.UTC(2024, 4, 1, 12),
    version: '1.0',
    mode: 'auth',
    store: { backend: 'sqlite', location: '/x/<b>.db', up: false, error: 'no <answer>' },
    uptimeSeconds: 3700,
    workers: 1,
    refreshSeconds: 0,
    recentSince: Date.UTC(2024, 4, 1, 11),
    kinds: [],
    audit: [
      {
        at: '2024-05-01T11:00:00.000Z',
        actor: 'api:<x>',
        action: 'move',
        kind: 'hub',
        name: '<img src=x onerror=alert(1)>',
        from: 'a',
        to: 'b',
        reason: EVIL,
      },
    ],
  };
  const html = renderStatus(view);
  assert.doesNotMatch(html, /<script|<img|<b>\.db|<answer>/);
  assert.match(html, new RegExp(escapeHtml(EVIL).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match(html, /role="alert"><b>The store did not answer/);
  assert.doesNotMatch(html, /http-equiv="refresh"/, 'refresh 0: no reload');
});

test('/status: loopback without a token; otherwise an admin token as Bearer or Basic password', async (t) => {
  const open = await populated(t);
  const r = await page(`${open.sharder.controlUrl}/status`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html; charset=utf-8/);
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
  assert.match(r.html, /<meta http-equiv="refresh" content="30">/);
  assert.match((await page(`${open.sharder.controlUrl}/status?refresh=5`)).html, /content="5"/);
  assert.doesNotMatch((await page(`${open.sharder.controlUrl}/status?refresh=0`)).html, /http-equiv="refresh"/);
  assert.doesNotMatch(r.html, /<script/);
  assert.match(r.html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &quot;quotes&quot;/);

  const closed = await startSharder(t, { admin: { token: ADMIN }, status: { loopback_without_token: false } });
  const url = `${closed.sharder.controlUrl}/status`;
  const refused = await page(url);
  assert.equal(refused.status, 401);
  assert.match(
    String(refused.headers['www-authenticate']),
    /Basic realm="sharder status"/,
    'a browser can ask for the token',
  );
  assert.equal(JSON.parse(refused.html).code, 'SHARD_ERR_UNAUTHORIZED');
  assert.equal((await page(url, { authorization: `Bearer ${ADMIN}` })).status, 200);
  assert.equal(
    (await page(url, { authorization: `Basic ${Buffer.from(`anyone:${ADMIN}`).toString('base64')}` })).status,
    200,
  );
  assert.equal(
    (await page(url, { authorization: `Basic ${Buffer.from(`admin:${ADMIN}x`).toString('base64')}` })).status,
    401,
  );
  assert.equal((await page(url, { authorization: 'Bearer short' })).status, 401);
});

test('/status when the store is down: the page says so and still answers', async (t) => {
  const r = await populated(t);
  await r.sharder.store.close();
  const p = await page(`${r.sharder.controlUrl}/status`);
  assert.equal(p.status, 200);
  assert.match(p.html, /not answering/);
  assert.match(p.html, /The store did not answer/);
});

/** Headless Chromium, quiet (no background networking, updates or sync), closed when the test ends. */
async function launchChromium(t: HasAfter): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  return browser;
}

const chromiumMissing = needs(
  'chromium',
  existsSync(CHROMIUM) ? undefined : `no ${CHROMIUM} (apt-get install chromium, or set SHARDER_TEST_CHROMIUM)`,
);

test(
  'the status page in headless Chromium shows the buckets and counts, on a desktop and a phone',
  { skip: chromiumMissing },
  async (t) => {
    const r = await populated(t);
    mkdirSync(ARTIFACTS, { recursive: true });
    const browser = await launchChromium(t);
    const expected: Record<string, Record<string, { count: number; state: string }>> = {};
    for (const kind of ['hub', 'home']) {
      const v = await r.sharder.ops.buckets(kind);
      expected[kind] = Object.fromEntries(v.buckets.map((b) => [b.name, { count: b.count, state: b.state }]));
    }
    assert.equal(expected.hub!['hub-2']!.count, 1, 'the draining bucket holds the moved user');

    for (const [name, viewport] of [
      ['desktop', { width: 1100, height: 900 }],
      ['phone', { width: 390, height: 844 }],
    ] as const) {
      // No JavaScript at all: the page must not need it.
      const context = await browser.newContext({
        viewport,
        javaScriptEnabled: false,
        isMobile: name === 'phone',
        deviceScaleFactor: name === 'phone' ? 2 : 1,
      });
      t.after(() => context.close());
      const tab = await context.newPage();
      const problems: string[] = [];
      tab.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      tab.on('pageerror', (e) => problems.push(e.message));
      const res = await tab.goto(`${r.sharder.controlUrl}/status`);
      assert.equal(res?.status(), 200);

      // What a person reads: the bucket names, the numbers and the badges as rendered text.
      // (Browser-side code is passed as text: this project's TypeScript has no DOM types.)
      const shown = await tab.evaluate<
        Record<string, Record<string, { count: number; state: string }>>
      >(`Object.fromEntries(
      [...document.querySelectorAll('section.kind')].map((s) => [
        s.getAttribute('data-kind'),
        Object.fromEntries([...s.querySelectorAll('li.bucket')].map((li) => [
          li.querySelector('.name').innerText,
          {
            count: Number(li.querySelector('.n').innerText.replaceAll(',', '')),
            state: li.querySelector('.badge').innerText,
          },
        ])),
      ]))`);
      assert.deepEqual(Object.keys(shown), ['hub', 'home']);
      for (const kind of ['hub', 'home']) {
        assert.deepEqual(
          Object.fromEntries(Object.entries(shown[kind]!).map(([b, v]) => [b, v.count])),
          Object.fromEntries(Object.entries(expected[kind]!).map(([b, v]) => [b, v.count])),
          `${name}: counts of ${kind}`,
        );
      }
      assert.match(shown.hub!['hub-2']!.state, /draining/i);
      const badge = tab.locator('li.bucket[data-bucket="hub-2"] .badge');
      assert.ok(await badge.isVisible(), 'the draining badge is visible');
      assert.match(await badge.innerText(), /^DRAINING · NO NEW OBJECTS$/, 'and stands out (rendered in capitals)');
      assert.equal(await tab.locator('.audit').getByText(EVIL).count(), 1, 'the reason is shown as text');
      // Everything fits the width: no sideways scrolling, bars inside the screen.
      const overflow = await tab.evaluate<number>(
        'document.documentElement.scrollWidth - document.documentElement.clientWidth',
      );
      assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
      const bars = await tab.locator('.bar').all();
      assert.equal(bars.length, 5);
      for (const bar of bars) {
        const box = await bar.boundingBox();
        assert.ok(
          box && box.x >= 0 && box.x + box.width <= viewport.width && box.width > viewport.width / 2,
          `${name}: bar at ${JSON.stringify(box)}`,
        );
      }
      assert.deepEqual(problems, [], `${name}: console errors (a CSP violation would show here)`);
      await tab.screenshot({ path: join(ARTIFACTS, `status-${name}.png`), fullPage: true });
    }
  },
);

test('the status page reloads itself in Chromium and shows new assignments', { skip: chromiumMissing }, async (t) => {
  const r = await populated(t);
  const browser = await launchChromium(t);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const tab = await context.newPage();
  await tab.goto(`${r.sharder.controlUrl}/status?refresh=1`);
  const total = (): Promise<string | null> => tab.locator('section[data-kind="hub"] h2 small').textContent();
  assert.match((await total()) ?? '', /^24 objects · 24 new in the last hour$/);
  for (let i = 0; i < 6; i++) assert.equal((await page(`${r.url}/auth`, { REMOTE_USER: `late-${i}` })).status, 200);
  // The meta refresh reloads the page; wait for the new numbers (bounded by the test timeout).
  await tab.waitForFunction(
    `/^30 objects/.test(document.querySelector('section[data-kind="hub"] h2 small')?.textContent ?? '')`,
    undefined,
    { timeout: 10_000 },
  );
  assert.match((await total()) ?? '', /^30 objects · 30 new in the last hour$/);
});
