import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows, openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createUser } from '../users/user-queries.ts';
import { hashPassword } from './passwords.ts';

let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
  await createUser(database.db, { username: 'Admin', email: 'admin@example.com', passwordHash: await hashPassword(DEFAULT_PASSWORD) });
});
after(() => database.close());

const users = () => countRows(database, 'chatbot_schema.app_user');

describe('REGISTRATION=closed', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ REGISTRATION: 'closed' }, database);
  });
  after(() => t.close());

  test('GET /register is 403 with an explanation, and the sign-in page does not offer it', async () => {
    const c = new TestClient(t.app);
    const res = await c.get('/register');
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /Registration is closed/);
    assert.doesNotMatch(res.body, /name="password"/);
    assert.doesNotMatch((await c.get('/login')).body, /href="\/register"/);
  });

  test('POST /register is 403 (with a valid CSRF token) and creates nothing', async () => {
    const before = await users();
    const c = new TestClient(t.app);
    await c.get('/login');
    const res = await c.post('/register', { username: 'Sneaky', email: 'sneaky@example.com', password: DEFAULT_PASSWORD });
    assert.equal(res.statusCode, 403);
    assert.equal(c.cookies.get('parley_session'), undefined);
    assert.equal(await users(), before);
  });

  test('existing accounts still sign in with their password', async () => {
    assert.equal((await new TestClient(t.app).login('admin@example.com')).statusCode, 303);
  });
});

describe('LOCAL_LOGIN=false', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ LOCAL_LOGIN: 'false' }, database);
  });
  after(() => t.close());

  test('the sign-in page has no password form and says why', async () => {
    const res = await new TestClient(t.app).get('/login');
    assert.equal(res.statusCode, 200);
    assert.doesNotMatch(res.body, /name="password"/);
    // The password form posts to /login; the passkey button (not a password) may stay, posting to /login/passkey.
    assert.doesNotMatch(res.body, /action="\/login(?:\?[^"]*)?"/);
    assert.doesNotMatch(res.body, /href="\/register"/);
    assert.match(res.body, /Password sign-in is turned off/);
  });

  test('POST /login with the right password is refused and signs nobody in', async () => {
    const c = new TestClient(t.app);
    await c.get('/login');
    const res = await c.post('/login', { email: 'admin@example.com', password: DEFAULT_PASSWORD });
    assert.equal(res.statusCode, 403);
    assert.equal(c.cookies.get('parley_session'), undefined);
    assert.equal((await c.get('/chat')).statusCode, 303);
  });

  test('registration is off too (even though REGISTRATION is open)', async () => {
    const before = await users();
    const c = new TestClient(t.app);
    assert.equal((await c.get('/register')).statusCode, 403);
    await c.get('/login');
    assert.equal((await c.post('/register', { username: 'New', email: 'new@example.com', password: DEFAULT_PASSWORD })).statusCode, 403);
    assert.equal(await users(), before);
  });
});

describe('the defaults', () => {
  test('open registration: the sign-in page offers the form and the link to register', async () => {
    const t = await startTestApp({}, database);
    try {
      const body = (await new TestClient(t.app).get('/login')).body;
      assert.match(body, /name="password"/);
      assert.match(body, /href="\/register"/);
    } finally {
      await t.close();
    }
  });
});
