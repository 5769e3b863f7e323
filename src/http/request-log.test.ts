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
