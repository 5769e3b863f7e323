import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { parseCreateUserArgs } from '../src/cli/user-create.ts';
import { startTestApp, type TestApp } from './app.ts';
import { DEFAULT_PASSWORD, TestClient } from './client.ts';
import { TestProvider } from './google-provider.ts';

/**
 * Issue 16 item 14: one rule for display names wherever a name is set (src/http/display-name.ts). A name with a bidi
 * control (U+202E and its kin) could pass for another user's in the user list and the audit log: refused with a form
 * error. Length is what people see: 50 emoji (100 UTF-16 units) is a 50-character name.
 */
const provider = new TestProvider();
let t: TestApp;
let n = 0;
let admin: TestClient;

before(async () => {
  await provider.start();
  t = await startTestApp(provider.env());
  admin = new TestClient(t.app);
  await admin.register({ username: 'Admin', email: 'admin@example.com' });
});
after(async () => {
  await t.close();
  await provider.stop();
});

const LYING = ['Bob\u202Enimda', '\u2067Alice\u2069', 'Eve\u200F', 'x\u061Cy', '\u202AMallory'];
/** 50 characters as people count them, 100 UTF-16 units. */
const FIFTY_EMOJI = '😀'.repeat(50);
/** 50 characters, 100 code points: e + combining acute accent. */
const FIFTY_DECOMPOSED = 'e\u0301'.repeat(50);

const nameOf = async (email: string) =>
  (await t.database.db.selectFrom('chatbot_schema.app_user').select('txusername').where(sql<string>`lower(txemail)`, '=', email).executeTakeFirst())
    ?.txusername;

describe('registration', () => {
  for (const name of LYING) {
    test(`a name with a bidi control is refused with a form error: ${JSON.stringify(name)}`, async () => {
      const email = `bidi${++n}@example.com`;
      const res = await new TestClient(t.app).register({ username: name, email });
      assert.equal(res.statusCode, 400);
      assert.match(res.body, /text-direction characters/);
      assert.equal(await nameOf(email), undefined);
    });
  }

  test('length counts characters people see: 50 emoji and 50 decomposed é are accepted, 51 emoji are not', async () => {
    for (const name of [FIFTY_EMOJI, FIFTY_DECOMPOSED]) {
      const email = `long${++n}@example.com`;
      const res = await new TestClient(t.app).register({ username: name, email });
      assert.equal(res.statusCode, 303, res.body.slice(0, 300));
      assert.equal(await nameOf(email), name);
    }
    // Browsers count maxlength in UTF-16 units: the field must let 50 emoji be typed.
    const page = await new TestClient(t.app).get('/register');
    assert.match(page.body, /name="username"[^>]*maxlength="200"/);
    const res = await new TestClient(t.app).register({ username: `${FIFTY_EMOJI}😀`, email: `long${++n}@example.com` });
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /at most 50 characters/);
  });
});

test('Settings: a lying name is refused beside the field, 50 emoji are saved', async () => {
  const c = new TestClient(t.app);
  const email = `settings${++n}@example.com`;
  await c.register({ username: 'Plain', email });
  await c.get('/settings');
  const refused = await c.post('/settings/profile', { username: 'Admin\u202E' });
  assert.equal(refused.statusCode, 400);
  assert.match(refused.body, /text-direction characters/);
  assert.equal(await nameOf(email), 'Plain');
  assert.equal((await c.post('/settings/profile', { username: FIFTY_EMOJI })).statusCode, 303);
  assert.equal(await nameOf(email), FIFTY_EMOJI);
});

test('Add a user (admin): a lying name is refused beside the field, 50 emoji are accepted', async () => {
  await admin.get('/admin/users/new');
  const form = { email: `added${++n}@example.com`, role: 'user', signIn: 'password', password: DEFAULT_PASSWORD };
  const refused = await admin.post('/admin/users/new', { ...form, username: 'Admin\u2066' });
  assert.equal(refused.statusCode, 400);
  assert.match(refused.body, /text-direction characters/);
  assert.equal(await nameOf(form.email), undefined);
  assert.equal((await admin.post('/admin/users/new', { ...form, username: FIFTY_EMOJI })).statusCode, 303);
  assert.equal(await nameOf(form.email), FIFTY_EMOJI);
});

test('npm run user:create: a lying --username is refused, 50 emoji are accepted', () => {
  assert.throws(() => parseCreateUserArgs(['--email', 'cli@example.com', '--username', 'Admin\u202E']), /text-direction characters/);
  assert.equal(parseCreateUserArgs(['--email', 'cli@example.com', '--username', FIFTY_EMOJI])?.username, FIFTY_EMOJI);
});

test("Google's name claim: a lying name is dropped (the e-mail's local part is used), the sign-in goes on", async () => {
  provider.claims = { sub: 'g-liar', email: 'liar@example.com', email_verified: true, name: 'Admin\u202Enimda' };
  const c = new TestClient(t.app);
  const start = await c.get('/login/google');
  const back = new URL(await provider.authorize(String(start.headers.location)));
  const res = await c.get(back.pathname + back.search);
  assert.equal(res.headers.location, '/chat');
  assert.equal(await nameOf('liar@example.com'), 'liar');
});
