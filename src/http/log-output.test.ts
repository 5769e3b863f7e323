import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { testConfig } from '../../test/app.ts';
import { openTestDatabase } from '../../test/database.ts';
import { buildApp } from '../app.ts';
import { serverLoggerOptions } from './log-output.ts';

/** The server's logger options (server.ts), writing to a captured stream instead of stdout. */
async function linesOf(isProduction: boolean, requests: (inject: (url: string) => Promise<unknown>) => Promise<void>): Promise<string[]> {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  const options = serverLoggerOptions({ LOG_LEVEL: 'info', isProduction }, destination);
  // Production writes pino's JSON to stdout; the same options, pointed at the capture.
  const logger = isProduction ? { ...(options as object), stream: destination } : options;
  const database = await openTestDatabase();
  const app = await buildApp({ config: testConfig(), db: database.db, logger });
  try {
    await app.ready();
    await requests((url) => app.inject({ url }));
  } finally {
    await app.close();
    await database.close();
  }
  return text.split('\n').filter(Boolean);
}

test('development: one readable line per request, "[time] INFO: GET /path status ms", and secrets redacted', async () => {
  const lines = await linesOf(false, async (get) => {
    await get('/login?next=%2Fchat');
    await get('/reset-password/Zq3xY7_secret-token-0123456789abcdefghijklmn');
  });
  const requests = lines.filter((l) => / ms$/.test(l));
  assert.equal(requests.length, 2, lines.join('\n'));
  assert.match(requests[0] ?? '', /^\[\d\d:\d\d:\d\d\] INFO: GET \/login\?next=%2Fchat 200 [\d.]+ ms$/);
  assert.match(requests[1] ?? '', /^\[\d\d:\d\d:\d\d\] INFO: GET \/reset-password\/\[redacted\] 404 [\d.]+ ms$/);
  assert.ok(!lines.some((l) => l.startsWith('{') || l.includes('secret-token')), lines.join('\n'));
});

test('production: JSON lines for a collector, the request line with method, url, status and ms', async () => {
  assert.deepEqual(serverLoggerOptions({ LOG_LEVEL: 'warn', isProduction: true }), { level: 'warn' });
  const lines = await linesOf(true, async (get) => {
    await get('/login?next=%2Fchat');
  });
  const request = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.url === '/login?next=%2Fchat');
  assert.ok(request, lines.join('\n'));
  assert.deepEqual({ method: request.method, status: request.status, ms: typeof request.ms }, { method: 'GET', status: 200, ms: 'number' });
});
