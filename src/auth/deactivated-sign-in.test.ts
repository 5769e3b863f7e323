import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { enrolThroughSettings, nextCode } from '../../test/totp-helpers.ts';

/**
 * Issue 16 item 7: a deactivated account is told so, and whom to ask, once it has proved who it is (password, and the
 * second factor when it has one); before that, it gets the answer anyone gets.
 */
let t: TestApp;
before(async () => {
  t = await startTestApp();
  await new TestClient(t.app).register({ email: 'admin@example.com' });
});
after(() => t.close());

/** As the admin's Deactivate does: the flag, and every session of the account ended. */
const deactivate = async (email: string) => {
  const { idappuser } = await t.database.db
    .updateTable('chatbot_schema.app_user')
    .set({ is_active: false })
    .where('txemail', '=', email)
    .returning('idappuser')
    .executeTakeFirstOrThrow();
  await t.database.db.deleteFrom('chatbot_schema.session').where('idappuser', '=', idappuser).execute();
};
const sessionsOf = async (email: string) => {
  const { idappuser } = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', email).executeTakeFirstOrThrow();
  return (await t.database.db.selectFrom('chatbot_schema.session').select('idsession').where('idappuser', '=', idappuser).execute()).length;
};

test('a wrong password says only "wrong"; the right one says the account is deactivated and to ask an administrator, with no session', async () => {
  await new TestClient(t.app).register({ email: 'gone@example.com' });
  await deactivate('gone@example.com');
  const wrong = await new TestClient(t.app).login('gone@example.com', 'not the password at all');
  assert.equal(wrong.statusCode, 401);
  assert.match(wrong.body, /Wrong e-mail address or password/);
  assert.doesNotMatch(wrong.body, /deactivated/);

  const c = new TestClient(t.app);
  const right = await c.login('gone@example.com');
  assert.equal(right.statusCode, 303);
  assert.equal(right.headers.location, '/login');
  const page = await c.get('/login');
  assert.match(page.body, /This account is deactivated\. Ask an administrator of this server to reactivate it\./);
  assert.doesNotMatch(page.body, /Wrong e-mail address/);
  assert.equal(await sessionsOf('gone@example.com'), 0);
  assert.equal((await c.get('/chat')).statusCode, 303, 'not signed in');
});

test('with 2FA: the password leads to the second step; a wrong code is just wrong; the right code says deactivated', async () => {
  const owner = new TestClient(t.app);
  await owner.register({ email: 'gone2fa@example.com' });
  const { secret } = await enrolThroughSettings(owner);
  await deactivate('gone2fa@example.com');

  const c = new TestClient(t.app);
  const res = await c.login('gone2fa@example.com');
  assert.equal(res.headers.location, '/login/2fa', 'nothing said before the second factor');
  await c.get('/login/2fa');
  const wrong = await c.post('/login/2fa', { otp_code: nextCode(secret) === '000000' ? '999999' : '000000' });
  assert.equal(wrong.statusCode, 401);
  assert.doesNotMatch(wrong.body, /deactivated/);
  const right = await c.post('/login/2fa', { otp_code: nextCode(secret) });
  assert.equal(right.statusCode, 303);
  assert.equal(right.headers.location, '/login');
  assert.match((await c.get('/login')).body, /This account is deactivated\. Ask an administrator/);
  assert.equal(await sessionsOf('gone2fa@example.com'), 0, 'the pending session is gone too');
});
