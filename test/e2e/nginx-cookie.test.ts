/**
 * The signed `hub` cookie through real nginx (the shipped auth_request configuration): nginx
 * passes the signed value to the browser unchanged, routes by the sharder's answer only, and a
 * forged or tampered cookie sent by the client changes nothing.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { nginxSkip } from '../helpers/nginx.js';
import { cookieOf, hubOf, startStack } from '../helpers/stack.js';

const SECRET = 'nginx-cookie-secret-0123456789abcdef0123456789';
const signed = (bucket: string): string =>
  `${bucket}.${createHmac('sha256', SECRET).update(`hub=${bucket}`).digest('base64url')}`;

describe('signed hub cookie through nginx', { skip: nginxSkip }, () => {
  test('nginx passes the signed cookie through; forged or tampered cookies do not move anyone', async (t) => {
    const stack = await startStack(t, { front: 'basic', sharder: { cookie: { secret: SECRET } } });
    const first = await stack.as('alice');
    assert.equal(first.status, 200, first.body);
    const bucket = hubOf(first)!;
    assert.equal(cookieOf(first), `hub=${signed(bucket)}; Path=/; HttpOnly; SameSite=Lax`);
    const other = bucket === 'hub-2' ? 'hub-1' : 'hub-2';
    for (const cookie of [
      `hub=${other}`,
      `hub=${other}.${signed(bucket).split('.')[1]}`,
      `hub=${signed(other)}x`,
      `hub=${signed(other)}`,
    ]) {
      const r = await stack.as('alice', '/hub/', { cookie });
      assert.equal(r.status, 200, `${cookie}: ${r.body}`);
      assert.equal(hubOf(r), bucket, cookie);
      assert.equal(cookieOf(r), `hub=${signed(bucket)}; Path=/; HttpOnly; SameSite=Lax`, 'the true cookie replaces it');
    }
    assert.doesNotMatch(stack.nginx.errorLog(), /\[(crit|error|alert|emerg)\]/);
  });
});
