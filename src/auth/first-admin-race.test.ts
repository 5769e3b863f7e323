import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

const CONCURRENT = 20;

/** Each client has loaded the form (so it holds a CSRF token), then all submit at the same moment. */
async function submitTogether(forms: Array<{ username: string; email: string }>): Promise<number[]> {
  const clients = forms.map(() => new TestClient(t.app));
  await Promise.all(clients.map((c) => c.get('/register')));
  const results = await Promise.all(clients.map((c, i) => c.post('/register', { ...forms[i], password: DEFAULT_PASSWORD })));
  return results.map((r) => r.statusCode);
}

test(`${CONCURRENT} simultaneous first registrations: ${CONCURRENT} users, exactly one Admin, and it is the first row (the race bites only on PostgreSQL)`, async () => {
  const statuses = await submitTogether(Array.from({ length: CONCURRENT }, (_, i) => ({ username: `Racer ${i}`, email: `racer-${i}@example.com` })));
  assert.deepEqual(statuses, Array(CONCURRENT).fill(303));
  assert.equal(await countRows(t.database, 'chatbot_schema.app_user'), CONCURRENT);
  const admins = await sql<{ idappuser: number }>`SELECT idappuser FROM chatbot_schema.user_role WHERE idrole = 1`.execute(t.database.db);
  assert.equal(admins.rows.length, 1);
  const first = await sql<{ id: number }>`SELECT min(idappuser) AS id FROM chatbot_schema.app_user`.execute(t.database.db);
  assert.equal(admins.rows[0]?.idappuser, first.rows[0]?.id);
  // Everyone has the User role.
  const users = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.user_role WHERE idrole = 2`.execute(t.database.db);
  assert.equal(users.rows[0]?.n, CONCURRENT);
});

test('registration from one address is limited: after 20 accounts in an hour the next is 429 with Retry-After', async () => {
  // The race above created 20 accounts from inject's default address.
  const before = await countRows(t.database, 'chatbot_schema.app_user');
  const c = new TestClient(t.app);
  const res = await c.register({ username: 'One more', email: 'one-more@example.com' });
  assert.equal(res.statusCode, 429);
  assert.ok(Number(res.headers['retry-after']) > 0);
  assert.match(res.body, /Too many new accounts/);
  assert.equal(await countRows(t.database, 'chatbot_schema.app_user'), before);
});

test('simultaneous registrations of one e-mail (in different cases): one account, the others 409 (the race bites only on PostgreSQL)', async () => {
  // As if the hour had passed: the registration limit of the test above is lifted.
  await t.database.db.deleteFrom('chatbot_schema.login_throttle').execute();
  const statuses = await submitTogether(
    ['twin@example.com', 'TWIN@example.com', 'Twin@Example.com', 'twin@EXAMPLE.com', 'twin@example.COM'].map((email, i) => ({ username: `Twin ${i}`, email })),
  );
  assert.deepEqual([...statuses].sort(), [303, 409, 409, 409, 409]);
  const rows = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.app_user WHERE lower(txemail) = 'twin@example.com'`.execute(
    t.database.db,
  );
  assert.equal(rows.rows[0]?.n, 1);
});
