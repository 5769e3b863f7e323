import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';

/** Bad input gets a clear 4xx (a page, or the form again), never a 500, and stores nothing. */
let t: TestApp;
let c: TestClient;
before(async () => {
  t = await startTestApp();
  // One account exists, so a registration that slips through would be a plain User, not hide behind first-Admin logic.
  await new TestClient(t.app).register({ username: 'Existing', email: 'existing@example.com' });
  c = new TestClient(t.app);
  await c.get('/register');
});
after(() => t.close());

const users = () => countRows(t.database, 'chatbot_schema.app_user');
const form = (fields: Record<string, string>) => new URLSearchParams({ _csrf: c.csrf, ...fields }).toString();
const good = { username: 'Nina', email: 'nina@example.com', password: DEFAULT_PASSWORD };

async function post(
  url: string,
  contentType: string | undefined,
  payload: string | Buffer,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url,
    payload,
    headers: { cookie: c.cookieHeader(), ...(contentType ? { 'content-type': contentType } : {}), ...headers },
  });
}

function assertClientError(res: LightMyRequestResponse, status: number, message: RegExp): void {
  assert.equal(res.statusCode, status, res.body.slice(0, 300));
  assert.match(String(res.headers['content-type']), /^text\/html/);
  assert.match(res.body, message);
  assert.doesNotMatch(res.body, /at .*\.(ts|js):\d+|FST_|Error:/);
}

test('an oversized form is 413 with a page, not a 500', async () => {
  const before = await users();
  const res = await post('/register', 'application/x-www-form-urlencoded', form({ ...good, username: 'x'.repeat(100 * 1024) }));
  assertClientError(res, 413, /too large/);
  assert.equal(await users(), before);
});

test('an oversized JSON body is 413 too (JSON routes allow more, for prompts, but not without limit)', async () => {
  const res = await post(
    '/register',
    'application/json',
    JSON.stringify({ _csrf: c.csrf, ...good, username: 'x'.repeat(t.config.MAX_PROMPT_CHARS * 6 + 8192) }),
  );
  assertClientError(res, 413, /too large/);
});

for (const [label, contentType, payload] of [
  ['text/plain', 'text/plain', () => 'username=Nina'],
  ['no content type', undefined, () => form(good)],
  ['multipart/form-data', 'multipart/form-data; boundary=x', () => '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nNina\r\n--x--\r\n'],
  ['application/xml', 'application/xml', () => '<user/>'],
] as const) {
  test(`${label} is 415 and stores nothing`, async () => {
    const before = await users();
    assertClientError(await post('/register', contentType, payload()), 415, /not accepted/);
    assert.equal(await users(), before);
  });
}

test('JSON sent to a form route is held to the same schema and the same CSRF check', async () => {
  const before = await users();
  // Wrong types: the form again, with a message per field.
  const wrong = await post('/register', 'application/json', JSON.stringify({ _csrf: c.csrf, username: ['a'], email: 5, password: { a: 1 } }));
  assertClientError(wrong, 400, /invalid-feedback/);
  // Without the token: refused like any other POST.
  assertClientError(await post('/register', 'application/json', JSON.stringify(good)), 403, /expired/);
  // Malformed JSON.
  assertClientError(await post('/register', 'application/json', '{"username": '), 400, /could not be understood/);
  // Prototype poisoning attempts are refused by the JSON parser.
  assertClientError(await post('/register', 'application/json', `{"_csrf":"${c.csrf}","__proto__":{"isAdmin":true}}`), 400, /could not be understood/);
  assert.equal(await users(), before);
});

for (const [label, field, encoded] of [
  ['e-mail', 'email', '%FF%FE%40example.com'],
  ['name', 'username', 'N%FF%FEina'],
  ['name (truncated sequence)', 'username', 'Nina%E0%A4%A'],
  ['password', 'password', `${encodeURIComponent(DEFAULT_PASSWORD)}%C0%AF`],
] as const) {
  test(`invalid UTF-8 in the ${label} is a 400 and stores nothing`, async () => {
    const before = await users();
    const fields = new URLSearchParams({ _csrf: c.csrf, ...good });
    fields.delete(field);
    const res = await post('/register', 'application/x-www-form-urlencoded', `${fields.toString()}&${field}=${encoded}`);
    assertClientError(res, 400, /not valid UTF-8/);
    assert.equal(await users(), before);
  });
}

test('raw invalid bytes in a form body are a 400', async () => {
  const body = Buffer.concat([Buffer.from(`${form({ email: good.email, password: good.password })}&username=`), Buffer.from([0xff, 0xfe, 0x41])]);
  assertClientError(await post('/register', 'application/x-www-form-urlencoded', body), 400, /not valid UTF-8/);
});

test('invalid UTF-8 at sign-in is a 400 too (and is not counted as a failed password)', async () => {
  const login = new TestClient(t.app);
  await login.get('/login');
  const res = await t.app.inject({
    method: 'POST',
    url: '/login',
    payload: `_csrf=${login.csrf}&email=existing%40example.com&password=%FF`,
    headers: { cookie: login.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
  });
  assertClientError(res, 400, /not valid UTF-8/);
  const counted = await t.database.db.selectFrom('chatbot_schema.login_throttle').select('txkey').where('txkey', 'not like', 'reg:%').execute();
  assert.deepEqual(counted, []);
});

test('a repeated field is refused with the form shown again, not one value picked', async () => {
  const before = await users();
  const body = `${form(good)}&email=other%40example.com`;
  const res = await post('/register', 'application/x-www-form-urlencoded', body);
  assertClientError(res, 400, /id="f-email-error">E-mail must be given once/);
  assert.equal(await users(), before);
  // A repeated CSRF token is no token.
  assertClientError(await post('/register', 'application/x-www-form-urlencoded', `${form(good)}&_csrf=${c.csrf}`), 403, /expired/);
});

test('unknown fields are ignored: they cannot make a registration an Admin', async () => {
  const res = await post(
    '/register',
    'application/x-www-form-urlencoded',
    form({ ...good, is_admin: 'true', idrole: '1', role: 'Admin', isAdmin: '1', __proto__: 'x' }),
  );
  assert.equal(res.statusCode, 303, res.body.slice(0, 300));
  const row = await t.database.db
    .selectFrom('chatbot_schema.user_role as r')
    .innerJoin('chatbot_schema.app_user as u', 'u.idappuser', 'r.idappuser')
    .select('r.idrole')
    .where('u.txemail', '=', good.email)
    .execute();
  assert.deepEqual(row, [{ idrole: 2 }]);
});

test('an invalid e-mail address re-renders the form beside the field', async () => {
  const fresh = new TestClient(t.app);
  await fresh.get('/register');
  for (const email of ['not-an-address', 'a@', '@example.com', 'a b@example.com', `${'x'.repeat(250)}@example.com`]) {
    const res = await fresh.post('/register', { ...good, email });
    assertClientError(res, 400, /id="f-email-error"/);
  }
});
