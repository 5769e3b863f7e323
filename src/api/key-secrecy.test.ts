import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { sql } from 'kysely';
import { testConfig } from '../../test/app.ts';
import { addModel } from '../../test/chat-fixtures.ts';
import { TestClient } from '../../test/client.ts';
import { openTestDatabase } from '../../test/database.ts';
import { buildApp } from '../app.ts';
import { serverLoggerOptions } from '../http/log-output.ts';
import { startFakeLlm } from '../llm/fake-llm-server.ts';

test('a key is stored only as its hash and never written to the log, whatever the request does with it', async () => {
  let log = '';
  const destination = new Writable({
    write(chunk, _encoding, done) {
      log += String(chunk);
      done();
    },
  });
  const options = serverLoggerOptions({ LOG_LEVEL: 'trace', isProduction: true }, destination);
  const database = await openTestDatabase();
  const llm = await startFakeLlm();
  const app = await buildApp({ config: testConfig(), db: database.db, logger: { ...(options as object), level: 'trace', stream: destination } });
  try {
    await app.ready();
    await addModel(database, llm.baseUrl);
    const user = new TestClient(app);
    await user.register({ email: 'kim@example.com' });
    await user.get('/settings/api-keys');
    const created = await user.post('/settings/api-keys', { name: 'notebook', expires_in_days: '' });
    assert.equal(created.statusCode, 201);
    const key = /value="(prl_[A-Za-z0-9_-]{43})"/.exec(created.body)?.[1];
    assert.ok(key, 'the page shows the new key once');
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ model: 'Fake echo', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload: body })).statusCode, 200);
    // Misuses that put the key where loggers look: the URL, a wrong route, a bad body, a key one character off.
    await app.inject({ method: 'GET', url: `/v1/models?api_key=${key}`, headers: auth });
    await app.inject({ method: 'GET', url: `/v1/nothing/${key}`, headers: auth });
    await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: auth,
      payload: `{"model": "${key}", "messages": [{"role": "user", "content": "x"}]}`,
    });
    await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { ...auth, authorization: `Bearer ${key.slice(0, -1)}A` }, payload: '{' });
    assert.equal((await user.get('/settings/api-keys')).body.includes(key), false, 'shown once: not on the next visit');

    assert.ok(log.includes('/v1/'), 'the requests were logged');
    assert.equal(log.includes(key), false, 'the key is not in the log');
    assert.equal(log.includes(key.slice(12)), false, 'nor its secret part');
    const tables = await sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'chatbot_schema'`.execute(
      database.db,
    );
    for (const { table_name } of tables.rows) {
      const rows = await sql`SELECT * FROM ${sql.table(`chatbot_schema.${table_name}`)}`.execute(database.db);
      assert.equal(JSON.stringify(rows.rows).includes(key.slice(12)), false, `no key in ${table_name}`);
    }
  } finally {
    await app.close();
    await database.close();
    await llm.close();
  }
});
