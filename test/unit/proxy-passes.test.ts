/** The pure steps of proxy mode's passes (src/proxy/), with plain objects. */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { describeError, reserved } from '../../src/proxy/exchange.js';
import { errorPage, socketAnswerText } from '../../src/proxy/pages.js';
import { retryable } from '../../src/proxy/web.js';

const req = (method: string, headers: Record<string, string>, complete = true): IncomingMessage =>
  ({ method, headers, complete }) as unknown as IncomingMessage;

test('proxy passes: only bodiless idempotent requests that were read whole are sent twice', () => {
  assert.equal(retryable(req('GET', {})), true);
  assert.equal(retryable(req('HEAD', { 'content-length': '0' })), true);
  assert.equal(retryable(req('OPTIONS', {})), true);
  assert.equal(retryable(req('GET', { 'content-length': '5' })), false);
  assert.equal(retryable(req('GET', { 'transfer-encoding': 'chunked' })), false);
  assert.equal(retryable(req('GET', {}, false)), false);
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH']) assert.equal(retryable(req(m, {})), false, m);
});

test("proxy passes: the sharder's own prefix, and nothing that merely starts like it", () => {
  assert.ok(reserved('/_sharder') && reserved('/_sharder/healthz'));
  assert.ok(!reserved('/_sharderx') && !reserved('/user/_sharder') && !reserved('/'));
});

test('proxy passes: socket errors become sentences; pages and raw answers escape and frame', () => {
  assert.equal(describeError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'connection refused');
  assert.equal(describeError(Object.assign(new Error('x'), { code: 'EWEIRD' })), 'EWEIRD');
  const page = errorPage(502, 'hub-<0>', 'a "quoted" <b>message</b>', 'SHARD_ERR_UPSTREAM_DOWN');
  assert.ok(!page.includes('<b>') && page.includes('hub-&#60;0&#62;') && page.includes('502 Bad Gateway'));
  const text = socketAnswerText('1.0', { status: 404, code: 'SHARD_ERR_NOT_FOUND', message: 'ü', id: 'abc' });
  const [head, body] = text.split('\r\n\r\n') as [string, string];
  assert.match(head, /^HTTP\/1\.0 404 Not Found\r\n/);
  assert.match(head, new RegExp(`Content-Length: ${Buffer.byteLength(body)}\\r\\n`));
  assert.deepEqual(JSON.parse(body), { code: 'SHARD_ERR_NOT_FOUND', message: 'ü' });
});
