import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';
import { createSession } from './sessions.ts';

/**
 * An account with 2FA on (a Flask-era database can hold such users) signs in with its password into a
 * second-factor-pending session, which reaches the second step and sign-out and nothing else.
 */
let t: TestApp;
const sessionCookie = 'parley_session';
const sessionRow = (token: string) =>
  t.database.db
    .selectFrom('chatbot_schema.session')
    .select(['txsign_in_method', 'is_second_factor_pending', 'dtexpires', 'idappuser'])
    .where('idsession', '=', createHash('sha256').update(token).digest('hex'))
    .executeTakeFirst();

before(async () => {
  t = await startTestApp();
  await new TestClient(t.app).register({ username: 'Admin Ada', email: 'ada@example.com' }); // first account: Admin
  await new TestClient(t.app).register({ username: 'Bob', email: 'bob@example.com' });
  await t.database.db.updateTable('chatbot_schema.app_user').set({ is_2fa_enabled: true }).where('txemail', '=', 'ada@example.com').execute();
});
after(() => t.close());

describe('a password alone does not sign in an account with 2FA', () => {
  test('the right password leads to the second step with a short-lived pending session, and nothing is recorded as a sign-in', async () => {
    const lastLogin = () =>
      t.database.db.selectFrom('chatbot_schema.app_user').select('dtlast_login').where('txemail', '=', 'ada@example.com').executeTakeFirstOrThrow();
    const before = await lastLogin();
    const c = new TestClient(t.app);
    const res = await c.login('ada@example.com');
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login/2fa');
    const token = c.cookies.get(sessionCookie);
    assert.ok(token);
    const row = await sessionRow(token);
    assert.equal(row?.is_second_factor_pending, true);
    assert.equal(row?.txsign_in_method, 'password');
    const leftMs = (row?.dtexpires.getTime() ?? 0) - Date.now();
    assert.ok(leftMs > 0 && leftMs <= 5 * 60_000, `pending session expires in ${leftMs} ms`);
    assert.deepEqual(await lastLogin(), before);
  });

  test('the pending session reaches no page, no API and no admin page; the second step says why', async () => {
    const c = new TestClient(t.app);
    await c.login('ada@example.com');
    for (const url of ['/', '/chat', '/chat/1', '/admin/models', '/login', '/register']) {
      const res = await c.get(url);
      assert.equal(res.statusCode >= 300 && res.statusCode < 400, true, `${url}: ${res.statusCode}`);
      assert.equal(res.headers.location, '/login/2fa', url);
    }
    await c.get('/login/2fa'); // the CSRF token of this session, so a 401 below can only come from the guard
    const api = await c.get('/api/chats/1');
    assert.equal(api.statusCode, 401);
    assert.match(JSON.parse(api.body).error, /code/);
    const create = await c.postJson('/api/chats', { llm: 1 });
    assert.equal(create.statusCode, 401);
    const admin = await c.post('/admin/models', { name: 'x', baseUrl: 'http://127.0.0.1:1/v1', model: 'm' });
    assert.equal(admin.headers.location, '/login/2fa');
    assert.equal(await countRows(t.database, 'chatbot_schema.llm'), 0);

    const step = await c.get('/login/2fa');
    assert.equal(step.statusCode, 200);
    assert.match(step.body, /not signed in/);
    assert.doesNotMatch(step.body, /Admin Ada/, 'the navbar does not show the account as signed in');
  });

  test('sign-out ends a pending session', async () => {
    const c = new TestClient(t.app);
    await c.login('ada@example.com');
    const token = c.cookies.get(sessionCookie) as string;
    await c.get('/login/2fa');
    const out = await c.post('/logout', {});
    assert.equal(out.statusCode, 303);
    assert.equal(out.headers.location, '/login');
    assert.equal(await sessionRow(token), undefined);
  });

  test('a pending session ends after 5 minutes', async () => {
    const c = new TestClient(t.app);
    await c.login('ada@example.com');
    const token = c.cookies.get(sessionCookie) as string;
    await t.database.db
      .updateTable('chatbot_schema.session')
      .set({ dtexpires: sql`now() - interval '1 second'` })
      .where('idsession', '=', createHash('sha256').update(token).digest('hex'))
      .execute();
    const res = await c.get('/login/2fa');
    assert.equal(res.headers.location, '/login');
  });

  test('a wrong password is refused as for anyone', async () => {
    const res = await new TestClient(t.app).login('ada@example.com', 'not the password');
    assert.equal(res.statusCode, 401);
  });
});

describe('session fixation', () => {
  test('a valid session planted in the browser before sign-in is deleted at sign-in, and a new token issued', async () => {
    // The attacker's own half-signed-in session, planted in the victim's browser.
    const ada = await t.database.db
      .selectFrom('chatbot_schema.app_user')
      .select('idappuser')
      .where('txemail', '=', 'ada@example.com')
      .executeTakeFirstOrThrow();
    const planted = await createSession(t.database.db, ada.idappuser, { secondFactorPending: true });
    assert.ok(await sessionRow(planted), 'the planted session is valid');
    const victim = new TestClient(t.app);
    victim.cookies.set(sessionCookie, planted);
    assert.equal((await victim.get('/login')).headers.location, '/login/2fa'); // sent to the second step…
    await victim.get('/login/2fa'); // (a form of that page carries its CSRF token)
    const res = await victim.post('/login', { email: 'bob@example.com', password: DEFAULT_PASSWORD }); // …but may start over
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    const issued = victim.cookies.get(sessionCookie) as string;
    assert.notEqual(issued, planted);
    assert.equal(await sessionRow(planted), undefined, 'the planted session row is gone');
    assert.equal((await sessionRow(issued))?.is_second_factor_pending, false);
    const page = await victim.get('/chat');
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Bob/);
  });

  test('a complete session planted in the browser is not extended into a new sign-in', async () => {
    const bob = await t.database.db
      .selectFrom('chatbot_schema.app_user')
      .select('idappuser')
      .where('txemail', '=', 'bob@example.com')
      .executeTakeFirstOrThrow();
    const planted = await createSession(t.database.db, bob.idappuser, {});
    const c = new TestClient(t.app);
    c.cookies.set(sessionCookie, planted);
    const before = await countRows(t.database, 'chatbot_schema.session');
    await c.get('/chat');
    const res = await c.post('/login', { email: 'bob@example.com', password: DEFAULT_PASSWORD });
    assert.equal(res.headers.location, '/chat');
    assert.equal(await countRows(t.database, 'chatbot_schema.session'), before, 'no new session');
  });
});
