import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';
import { TestProvider } from '../../test/google-provider.ts';

/** Concurrent first sign-ins. PGlite has one connection and serializes everything: these prove something only on PostgreSQL. */
const provider = new TestProvider();
let t: TestApp;
before(async () => {
  await provider.start();
  t = await startTestApp(provider.env());
});
after(async () => {
  await t.close();
  await provider.stop();
});

/** A browser that has been to the provider and holds the callback URL, ready to come back. */
async function atProvider(claims: Record<string, unknown>): Promise<{ client: TestClient; callback: string }> {
  const client = new TestClient(t.app);
  const start = await client.get('/login/google');
  const back = new URL(await provider.authorize(String(start.headers.location), claims));
  return { client, callback: back.pathname + back.search };
}

test('20 concurrent first sign-ins, Google and password mixed, on an empty server: 20 accounts, exactly one Admin (the race bites only on PostgreSQL)', async () => {
  const google = await Promise.all(
    Array.from({ length: 10 }, (_, i) => atProvider({ sub: `g-race-${i}`, email: `g-race-${i}@example.com`, email_verified: true })),
  );
  const local = Array.from({ length: 10 }, () => new TestClient(t.app));
  await Promise.all(local.map((c) => c.get('/register')));
  const answers = await Promise.all([
    ...google.map(({ client, callback }) => client.get(callback)),
    ...local.map((c, i) => c.post('/register', { username: `Pw ${i}`, email: `pw-race-${i}@example.com`, password: DEFAULT_PASSWORD })),
  ]);
  assert.deepEqual(
    answers.map((r) => `${r.statusCode} ${r.headers.location}`),
    Array(20).fill('303 /chat'),
  );
  assert.equal(await countRows(t.database, 'chatbot_schema.app_user'), 20);
  const admins = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.user_role WHERE idrole = 1`.execute(t.database.db);
  assert.equal(admins.rows[0]?.n, 1);
  assert.equal(await countRows(t.database, 'chatbot_schema.oauth_identity'), 10);
});

test('two concurrent first sign-ins with the same sub: one account, both browsers signed in to it (the race bites only on PostgreSQL)', async () => {
  const claims = { sub: 'g-twin', email: 'twin@example.com', email_verified: true, name: 'Twin' };
  const [a, b] = await Promise.all([atProvider(claims), atProvider(claims)]);
  assert.ok(a && b);
  const answers = await Promise.all([a.client.get(a.callback), b.client.get(b.callback)]);
  assert.deepEqual(
    answers.map((r) => `${r.statusCode} ${r.headers.location}`),
    ['303 /chat', '303 /chat'],
  );
  const rows = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.app_user WHERE txemail = 'twin@example.com'`.execute(t.database.db);
  assert.equal(rows.rows[0]?.n, 1);
  const identities = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.oauth_identity WHERE txsubject = 'g-twin'`.execute(t.database.db);
  assert.equal(identities.rows[0]?.n, 1);
  assert.equal((await a.client.get('/chat')).statusCode, 200);
  assert.equal((await b.client.get('/chat')).statusCode, 200);
});
