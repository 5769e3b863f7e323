import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testConfig } from '../../test/app.ts';
import { openTestDatabase } from '../../test/database.ts';
import { buildApp } from '../app.ts';
import type { OpenedDatabase } from '../db/database.ts';

let database: OpenedDatabase;
let app: FastifyInstance;
const lines: Array<Record<string, unknown>> = [];

before(async () => {
  database = await openTestDatabase();
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  app = await buildApp({ config: testConfig(), db: database.db, logger: { level: 'info', stream } });
  await app.ready();
});
after(async () => {
  await app.close();
  await database.close();
});

test('each request is logged once, when answered: method, url, status and milliseconds', async () => {
  lines.length = 0;
  const res = await app.inject({ url: '/login?next=%2Fchat' });
  assert.equal(res.statusCode, 200);
  const missing = await app.inject({ url: '/no-such-page' });
  assert.equal(missing.statusCode, 404);
  const requestLines = lines.filter((l) => l.reqId !== undefined);
  assert.equal(requestLines.length, 2, JSON.stringify(requestLines));
  assert.deepEqual(
    requestLines.map(({ method, url, status }) => ({ method, url, status })),
    [
      { method: 'GET', url: '/login?next=%2Fchat', status: 200 },
      { method: 'GET', url: '/no-such-page', status: 404 },
    ],
  );
  for (const l of requestLines) assert.equal(typeof l.ms, 'number');
});

const TOKEN = 'Zq3xY7_secret-token-0123456789abcdefghijklmn';

test('secrets in URLs are redacted from every line: reset tokens, and the token, code and state parameters', async () => {
  lines.length = 0;
  const urls = [
    `/reset-password/${TOKEN}`,
    `/login/google/authorized?code=${TOKEN}&state=${TOKEN}&scope=openid`,
    `/login?next=%2Freset-password%2F${TOKEN}`,
    `/no-such-page?token=${TOKEN}`,
  ];
  for (const url of urls) await app.inject({ url });
  await app.inject({ method: 'POST', url: `/reset-password/${TOKEN}`, payload: { password: 'x' } });
  const urlsLogged = lines.filter((l) => l.reqId !== undefined).map((l) => l.url);
  assert.deepEqual(urlsLogged, [
    '/reset-password/[redacted]',
    '/login/google/authorized?code=[redacted]&state=[redacted]&scope=openid',
    '/login?next=%2Freset-password%2F[redacted]',
    '/no-such-page?token=[redacted]',
    '/reset-password/[redacted]',
  ]);
  assert.ok(!JSON.stringify(lines).includes(TOKEN), JSON.stringify(lines));
});

test('Fastify’s error lines, which carry the request, its error and a message, are redacted by the same rule', () => {
  lines.length = 0;
  const req = { method: 'POST', url: `/reset-password/${TOKEN}?code=${TOKEN}`, headers: {}, ip: '192.0.2.1', host: 'chat.example' };
  const err = new Error(`Reply was already sent, did you forget to "return reply" in the "/reset-password/${TOKEN}" (POST) route?`);
  app.log.error({ req, err }, `Route POST:/reset-password/${TOKEN} not found`);
  const [line] = lines;
  assert.ok(line);
  assert.deepEqual(line.req, { method: 'POST', url: '/reset-password/[redacted]?code=[redacted]', host: 'chat.example', remoteAddress: '192.0.2.1' });
  assert.equal(line.msg, 'Route POST:/reset-password/[redacted] not found');
  assert.match(String((line.err as { message: string }).message), /"\/reset-password\/\[redacted\]" \(POST\)/);
  assert.ok(!JSON.stringify(lines).includes(TOKEN), JSON.stringify(lines));
});
