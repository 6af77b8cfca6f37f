/** The header rules of proxy mode, as pure functions (no sockets). */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import {
  connectionTokens,
  forwardRequestHeaders,
  responseHeaders,
  wantsJson,
  type ForwardOptions,
} from '../../src/proxy/headers.js';

const base: ForwardOptions = {
  websocket: false,
  identityHeader: 'remote_user',
  altIdentityHeader: 'remote-user',
  kindHeaders: ['x-shard-kind', 'x-shard_kind'],
  forwardIdentity: true,
  trusted: true,
  peer: '192.0.2.10',
  encrypted: false,
};

function forwarded(h: IncomingHttpHeaders, o: Partial<ForwardOptions> = {}): IncomingHttpHeaders {
  const copy = { ...h };
  forwardRequestHeaders(copy, { ...base, ...o });
  return copy;
}

test('proxy headers: Connection tokens, case and spaces ignored', () => {
  assert.deepEqual(connectionTokens(' Keep-Alive ,X-Foo,, upgrade'), ['keep-alive', 'x-foo', 'upgrade']);
  assert.deepEqual(connectionTokens(undefined), []);
  assert.deepEqual(connectionTokens(['close', 'X-A']), ['close', 'x-a']);
});

test('proxy headers: hop-by-hop request headers go; framing, Host and identity stay', () => {
  const h = forwarded({
    host: 'hub.example.org',
    connection: 'keep-alive, x-a, transfer-encoding, content-length, host, remote_user',
    'x-a': '1',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    trailer: 'x-b',
    upgrade: 'h2c',
    'proxy-authorization': 'Basic eA==',
    'proxy-connection': 'keep-alive',
    expect: '100-continue',
    'transfer-encoding': 'chunked',
    remote_user: 'alice',
    'x-kept': 'yes',
  });
  assert.deepEqual(h, {
    host: 'hub.example.org',
    'transfer-encoding': 'chunked',
    remote_user: 'alice',
    'x-kept': 'yes',
    'x-forwarded-for': '192.0.2.10',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'hub.example.org',
  });
});

test('proxy headers: a websocket handshake keeps Connection: Upgrade and Upgrade: websocket', () => {
  const h = forwarded(
    { host: 'h', connection: 'keep-alive, Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' },
    { websocket: true, encrypted: true },
  );
  assert.equal(h.connection, 'Upgrade');
  assert.equal(h.upgrade, 'websocket');
  assert.equal(h['sec-websocket-key'], 'k');
  // http/https, not ws/wss: tornado ignores anything else.
  assert.equal(h['x-forwarded-proto'], 'https');
});

test('proxy headers: identity forwarded or stripped; the other spelling always stripped', () => {
  assert.equal(forwarded({ remote_user: 'alice' }).remote_user, 'alice');
  assert.equal(forwarded({ remote_user: 'alice' }, { forwardIdentity: false }).remote_user, undefined);
  assert.equal(forwarded({ 'remote-user': 'admin' })['remote-user'], undefined);
});

test('proxy headers: forwarding headers appended from trusted peers, replaced from others', () => {
  const incoming = {
    host: 'h',
    'x-forwarded-for': '203.0.113.1',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'public.example',
    forwarded: 'for=1.2.3.4',
    'x-real-ip': '1.2.3.4',
  };
  const t = forwarded(incoming);
  assert.equal(t['x-forwarded-for'], '203.0.113.1, 192.0.2.10');
  assert.equal(t['x-forwarded-proto'], 'https');
  assert.equal(t['x-forwarded-host'], 'public.example');
  assert.equal(t.forwarded, 'for=1.2.3.4');
  const u = forwarded(incoming, { trusted: false });
  assert.equal(u['x-forwarded-for'], '192.0.2.10');
  assert.equal(u['x-forwarded-proto'], 'http');
  assert.equal(u['x-forwarded-host'], 'h');
  assert.equal(u.forwarded, undefined);
  assert.equal(u['x-real-ip'], undefined);
  assert.equal(forwarded({}, { peer: undefined })['x-forwarded-for'], 'unix');
});

test('proxy headers: response keeps order, spelling and repeats, drops hop-by-hop, appends our cookie', () => {
  const raw = [
    'Content-Type',
    'text/plain',
    'Set-Cookie',
    'a=1',
    'Connection',
    'keep-alive, X-Hop',
    'X-Hop',
    'x',
    'Keep-Alive',
    'timeout=5',
    'Transfer-Encoding',
    'chunked',
    'set-cookie',
    'b=2',
    'Proxy-Authenticate',
    'Basic',
    'Upgrade',
    'h2c',
    'X-Kept',
    'y',
  ];
  assert.deepEqual(responseHeaders(raw, 'hub=hub-0; Path=/'), [
    'Content-Type',
    'text/plain',
    'Set-Cookie',
    'a=1',
    'set-cookie',
    'b=2',
    'X-Kept',
    'y',
    'Set-Cookie',
    'hub=hub-0; Path=/',
  ]);
  assert.deepEqual(responseHeaders(['Content-Length', '0'], null), ['Content-Length', '0']);
});

test('proxy headers: JSON is for clients that ask for it and not for HTML', () => {
  assert.equal(wantsJson('application/json'), true);
  assert.equal(wantsJson('application/problem+json, */*'), true);
  assert.equal(wantsJson('text/html,application/xhtml+xml,application/json;q=0.9'), false);
  assert.equal(wantsJson('*/*'), false);
  assert.equal(wantsJson(undefined), false);
});

test('proxy headers: the kind header, in both spellings, is for the sharder and never reaches a hub', () => {
  const h = forwarded({ host: 'h', 'x-shard-kind': 'admin-hub', 'x-shard_kind': 'x', remote_user: 'alice' });
  assert.equal(h['x-shard-kind'], undefined);
  assert.equal(h['x-shard_kind'], undefined);
  assert.equal(h.remote_user, 'alice');
  // With no kind header configured, a client's X-Shard-Kind is just a header like any other.
  assert.equal(forwarded({ host: 'h', 'x-shard-kind': 'k' }, { kindHeaders: [null, null] })['x-shard-kind'], 'k');
});
