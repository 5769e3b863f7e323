import assert from 'node:assert/strict';
import { test } from 'node:test';
import { placeForServer, spawnServer } from './server-process.ts';

/**
 * The log the real process writes, as `npm start` runs it with stdout on a pipe: in development, readable lines, one
 * per request with method, path, status and milliseconds, without the secrets of the URL (log-redaction.ts).
 * Production's JSON: src/http/log-output.test.ts.
 */
async function logOf(env: Record<string, string>): Promise<string[]> {
  const place = await placeForServer({ prefix: 'parley_logs' });
  try {
    const server = await spawnServer({ ...place.env, ...env });
    await fetch(`${server.baseUrl}/login?next=%2Fchat`);
    await fetch(`${server.baseUrl}/reset-password/Zq3xY7_secret-token-0123456789abcdefghijklmn`);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, server.output());
    return server.output().split('\n').filter(Boolean);
  } finally {
    await place.cleanUp();
  }
}

test('in development the log is lines a person reads: one per request, "GET /path status ms"', async () => {
  const lines = await logOf({});
  assert.ok(
    lines.some((l) => /^\[\d\d:\d\d:\d\d\] INFO: GET \/login\?next=%2Fchat 200 [\d.]+ ms$/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /^\[\d\d:\d\d:\d\d\] INFO: GET \/reset-password\/\[redacted\] 404 [\d.]+ ms$/.test(l)),
    lines.join('\n'),
  );
  assert.ok(!lines.some((l) => l.startsWith('{')), `no JSON lines:\n${lines.join('\n')}`);
  assert.ok(!lines.some((l) => l.includes('secret-token')), lines.join('\n'));
});
