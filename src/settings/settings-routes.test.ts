import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';

let t: TestApp;
let n = 0;

before(async () => {
  t = await startTestApp();
});
after(() => t.close());

async function account(): Promise<{ c: TestClient; email: string }> {
  n += 1;
  const email = `set${n}@example.com`;
  const c = new TestClient(t.app);
  await c.register({ email, username: `Set ${n}` });
  return { c, email };
}

async function otherBrowser(email: string, password = DEFAULT_PASSWORD): Promise<TestClient> {
  const c = new TestClient(t.app);
  const res = await c.login(email, password);
  assert.equal(res.headers.location, '/chat');
  return c;
}

const sessionIds = (body: string) => [...body.matchAll(/name="session" value="([0-9a-f]{64})"/g)].map((m) => m[1]);

describe('settings', () => {
  test('the page shows name, password form, sessions (this one marked) and the 2FA section', async () => {
    const { c, email } = await account();
    await otherBrowser(email);
    const page = await c.get('/settings');
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /value="Set \d+"/);
    assert.match(page.body, /name="current_password"/);
    assert.equal((page.body.match(/data-testid="session-row"/g) ?? []).length, 2);
    assert.match(page.body, /This browser/);
    assert.equal(sessionIds(page.body).length, 1, 'a Revoke button for the other session only');
    assert.match(page.body, /href="\/settings\/2fa"/);
  });

  test('display name: saved; empty or too long → 400 with the message beside the field', async () => {
    const { c, email } = await account();
    await c.get('/settings');
    assert.equal((await c.post('/settings/profile', { username: '  Grace Hopper ' })).statusCode, 303);
    const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('txusername').where('txemail', '=', email).executeTakeFirstOrThrow();
    assert.equal(row.txusername, 'Grace Hopper');
    const empty = await c.post('/settings/profile', { username: '   ' });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Enter your name/);
    assert.equal((await c.post('/settings/profile', { username: 'x'.repeat(51) })).statusCode, 400);
  });

  test('password change: current password required, registration rules, other sessions ended, this one kept', async () => {
    const { c, email } = await account();
    const other = await otherBrowser(email);
    await c.get('/settings');
    const wrong = await c.post('/settings/password', { current_password: 'not it at all', new_password: 'a brand new passphrase' });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /not your current password/);
    const weak = await c.post('/settings/password', { current_password: DEFAULT_PASSWORD, new_password: 'short' });
    assert.equal(weak.statusCode, 400);
    const common = await c.post('/settings/password', { current_password: DEFAULT_PASSWORD, new_password: 'password123' });
    assert.equal(common.statusCode, 400);
    assert.equal((await other.get('/chat')).statusCode, 200, 'refused changes end nothing');

    const ok = await c.post('/settings/password', { current_password: DEFAULT_PASSWORD, new_password: 'a brand new passphrase' });
    assert.equal(ok.statusCode, 303);
    assert.equal((await c.get('/chat')).statusCode, 200, 'this session stays');
    assert.equal((await other.get('/chat')).statusCode, 303, 'the other session ended');
    assert.equal((await new TestClient(t.app).login(email)).statusCode, 401, 'the old password no longer works');
    await otherBrowser(email, 'a brand new passphrase');
  });

  test('revoke one session; another user’s session id does nothing; "sign out everywhere else"', async () => {
    const { c, email } = await account();
    const b1 = await otherBrowser(email);
    const b2 = await otherBrowser(email);
    const [first] = sessionIds((await c.get('/settings')).body);
    assert.ok(first);
    assert.equal((await c.post('/settings/sessions/revoke', { session: first })).statusCode, 303);
    const stillIn = [(await b1.get('/chat')).statusCode, (await b2.get('/chat')).statusCode].sort();
    assert.deepEqual(stillIn, [200, 303], 'exactly one of the two was revoked');

    const stranger = await account();
    const [strangersOther] = sessionIds((await stranger.c.get('/settings')).body);
    assert.equal(strangersOther, undefined);
    const theirs = await otherBrowser(stranger.email);
    const [theirId] = sessionIds((await stranger.c.get('/settings')).body);
    assert.ok(theirId);
    await c.get('/settings');
    assert.equal((await c.post('/settings/sessions/revoke', { session: theirId })).statusCode, 303);
    assert.equal((await theirs.get('/chat')).statusCode, 200, 'another user’s session is untouched');
    assert.equal((await c.post('/settings/sessions/revoke', { session: 'nope' })).statusCode, 400);

    await otherBrowser(email);
    assert.equal((await c.post('/settings/sessions/revoke-others', {})).statusCode, 303);
    assert.equal((await b1.get('/chat')).statusCode, 303);
    assert.equal((await b2.get('/chat')).statusCode, 303);
    assert.equal((await c.get('/chat')).statusCode, 200);
    assert.equal(sessionIds((await c.get('/settings')).body).length, 0);
  });

  test('linked Google identities are listed; unlinked only while the account keeps a password', async () => {
    const { c, email } = await account();
    const { idappuser } = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', email).executeTakeFirstOrThrow();
    const identity = { txissuer: 'https://accounts.google.com', txsubject: `sub-${idappuser}`, idappuser, txemail: 'me@gmail.com' };
    await t.database.db.insertInto('chatbot_schema.oauth_identity').values(identity).execute();
    const page = await c.get('/settings');
    assert.match(page.body, /Google: me@gmail.com/);
    const wrong = await c.post('/settings/google/unlink', { issuer: identity.txissuer, subject: 'someone-else' });
    assert.equal(wrong.statusCode, 404);
    assert.equal((await c.post('/settings/google/unlink', {})).statusCode, 400);
    assert.equal((await c.post('/settings/google/unlink', { issuer: identity.txissuer, subject: identity.txsubject })).statusCode, 303);
    assert.match((await c.get('/settings')).body, /No Google account is linked/);

    // An account that signs in only with Google keeps its identity.
    await t.database.db.insertInto('chatbot_schema.oauth_identity').values(identity).execute();
    await t.database.db.updateTable('chatbot_schema.app_user').set({ password: null }).where('idappuser', '=', idappuser).execute();
    const only = await c.get('/settings');
    assert.match(only.body, /Your only way in/);
    assert.match(only.body, /has no password/);
    const refused = await c.post('/settings/google/unlink', { issuer: identity.txissuer, subject: identity.txsubject });
    assert.equal(refused.statusCode, 409);
    assert.match((await c.get('/settings')).body, /Google: me@gmail.com/);
  });

  test('a Google-only account (no password) sets a first password; other sessions end; an account with one cannot', async () => {
    const { c, email } = await account();
    const other = await otherBrowser(email);
    await t.database.db.updateTable('chatbot_schema.app_user').set({ password: null }).where('txemail', '=', email).execute();
    const page = await c.get('/settings');
    assert.match(page.body, /action="\/settings\/password\/new"/);
    assert.doesNotMatch(page.body, /name="current_password"/);
    assert.equal((await c.post('/settings/password/new', { new_password: 'short' })).statusCode, 400);
    assert.equal((await c.post('/settings/password/new', { new_password: 'a brand new passphrase' })).statusCode, 303);
    assert.equal((await other.get('/chat')).statusCode, 303, 'the other session is signed out');
    assert.equal((await new TestClient(t.app).login(email, 'a brand new passphrase')).headers.location, '/chat');
    await c.get('/settings');
    const again = await c.post('/settings/password/new', { new_password: 'another new passphrase' });
    assert.equal(again.statusCode, 409, 'an existing password is changed only with the current one');
  });
});
