import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { countRows } from '../../test/database.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

const sessionCookie = 'parley_session';

describe('registration', () => {
  test('the first account is an Admin and is signed in; the second is a User', async () => {
    const first = new TestClient(t.app);
    const res = await first.register({ username: 'Ada', email: 'Ada@Example.com' });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    assert.ok(first.cookies.get(sessionCookie));
    const chat = await first.get('/chat');
    assert.equal(chat.statusCode, 200);
    assert.match(chat.body, /href="\/admin\/models"/);

    const second = new TestClient(t.app);
    assert.equal((await second.register({ username: 'Bob', email: 'bob@example.com' })).statusCode, 303);
    const page = await second.get('/chat');
    assert.doesNotMatch(page.body, /href="\/admin\/models"/);

    const roles = await sql<{ txemail: string; roles: string }>`
      SELECT u.txemail, string_agg(r.txname, ',' ORDER BY r.idrole) AS roles
      FROM chatbot_schema.app_user u JOIN chatbot_schema.user_role ur USING (idappuser) JOIN chatbot_schema.role r USING (idrole)
      GROUP BY u.txemail ORDER BY u.txemail`.execute(t.database.db);
    assert.deepEqual(roles.rows, [
      { txemail: 'ada@example.com', roles: 'Admin,User' },
      { txemail: 'bob@example.com', roles: 'User' },
    ]);
  });

  test('the password is stored as argon2id with at least m=19456, t=2', async () => {
    const row = await t.database.db.selectFrom('chatbot_schema.app_user').select('password').where('txemail', '=', 'bob@example.com').executeTakeFirstOrThrow();
    const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(row.password ?? '');
    assert.ok(m, row.password ?? '');
    assert.ok(Number(m[1]) >= 19456 && Number(m[2]) >= 2);
  });

  test('an e-mail already registered (in any case) is refused with the form shown again', async () => {
    const c = new TestClient(t.app);
    const res = await c.register({ username: 'Ada 2', email: 'ADA@example.COM' });
    assert.equal(res.statusCode, 409);
    assert.match(res.body, /already exists/);
    assert.match(res.body, /value="Ada 2"/);
  });

  for (const [label, password, message] of [
    ['short', 'abc1234', /at least 8/],
    ['long', 'x'.repeat(129), /at most 128/],
    ['common', 'password1', /most common/],
  ] as const) {
    test(`a ${label} password is refused beside the field`, async () => {
      const c = new TestClient(t.app);
      const res = await c.register({ username: 'Eve', email: `eve-${label}@example.com`, password });
      assert.equal(res.statusCode, 400);
      assert.match(res.body, message);
      assert.equal(c.cookies.get(sessionCookie), undefined);
    });
  }

  test('a 128-character password is accepted and must be given whole (no truncation)', async () => {
    const long = `${'é'.repeat(127)}z`;
    const c = new TestClient(t.app);
    assert.equal((await c.register({ username: 'Long', email: 'long@example.com', password: long })).statusCode, 303);
    assert.equal((await new TestClient(t.app).login('long@example.com', long.slice(0, 127))).statusCode, 401);
    assert.equal((await new TestClient(t.app).login('long@example.com', long)).statusCode, 303);
  });

  test('malformed input re-renders the form with a 400 and stores nothing', async () => {
    const before = await t.database.db
      .selectFrom('chatbot_schema.app_user')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const c = new TestClient(t.app);
    await c.get('/register');
    for (const fields of [
      { username: '', email: 'x@example.com', password: DEFAULT_PASSWORD },
      { username: 'X', email: 'not-an-email', password: DEFAULT_PASSWORD },
      { username: 'X\u0000Y', email: 'x@example.com', password: DEFAULT_PASSWORD },
      { username: 'X', email: 'x@example.com' },
    ]) {
      const res = await c.post('/register', fields);
      assert.equal(res.statusCode, 400, JSON.stringify(fields));
      // A NUL is refused where input enters (src/http), before any form: the answer names it instead.
      assert.match(res.body, fields.username?.includes('\u0000') ? /NUL character/ : /invalid-feedback/);
    }
    const after = await t.database.db
      .selectFrom('chatbot_schema.app_user')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(after.n, before.n);
  });
});

describe('sign-in and sessions', () => {
  test('unknown e-mail and wrong password get the same answer', async () => {
    const a = await new TestClient(t.app).login('nobody@example.com', 'whatever-password');
    const b = await new TestClient(t.app).login('bob@example.com', 'whatever-password');
    assert.equal(a.statusCode, 401);
    assert.equal(b.statusCode, 401);
    const strip = (s: string) => s.replace(/value="[^"]*"/g, '').replace(/content="[^"]*"/g, '');
    assert.equal(strip(a.body), strip(b.body));
  });

  test('the session cookie is HttpOnly, SameSite=Lax, Path=/, and the database holds only its SHA-256', async () => {
    const c = new TestClient(t.app);
    await c.get('/login');
    const res = await c.post('/login', { email: 'bob@example.com', password: DEFAULT_PASSWORD });
    const cookie = res.cookies.find((x) => x.name === sessionCookie);
    assert.ok(cookie);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.value.length, 43); // 32 bytes, base64url
    const rows = await t.database.db.selectFrom('chatbot_schema.session').select('idsession').execute();
    assert.ok(rows.every((r) => r.idsession !== cookie.value));
    assert.ok(rows.some((r) => r.idsession === createHash('sha256').update(cookie.value).digest('hex')));
  });

  test('session fixation: a token planted before sign-in is replaced, and each sign-in gets a new one', async () => {
    const planted = 'A'.repeat(43);
    const victim = new TestClient(t.app);
    victim.cookies.set(sessionCookie, planted);
    await victim.login('ada@example.com');
    const first = victim.cookies.get(sessionCookie);
    assert.ok(first && first !== planted);
    await victim.get('/chat');
    await victim.post('/logout', {});
    await victim.login('ada@example.com');
    const second = victim.cookies.get(sessionCookie);
    assert.ok(second && second !== first);
  });

  test('logout deletes the session: replaying the old cookie is signed out', async () => {
    const c = new TestClient(t.app);
    await c.login('bob@example.com');
    const token = c.cookies.get(sessionCookie) as string;
    await c.get('/chat');
    const out = await c.post('/logout', {});
    assert.equal(out.statusCode, 303);
    assert.equal(out.headers.location, '/login');
    const replay = await t.app.inject({ method: 'GET', url: '/chat', cookies: { [sessionCookie]: token } });
    assert.equal(replay.statusCode, 303);
    assert.match(String(replay.headers.location), /^\/login/);
  });

  test('a deactivated user is out on their next request', async () => {
    const c = new TestClient(t.app);
    await c.login('bob@example.com');
    assert.equal((await c.get('/chat')).statusCode, 200);
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: false }).where('txemail', '=', 'bob@example.com').execute();
    const res = await c.get('/chat');
    assert.equal(res.statusCode, 303);
    // The right password: told the account is deactivated (issue 16 item 7), and not signed in.
    const again = await new TestClient(t.app).login('bob@example.com');
    assert.equal(again.statusCode, 303);
    assert.equal(again.headers.location, '/login');
    await t.database.db.updateTable('chatbot_schema.app_user').set({ is_active: true }).where('txemail', '=', 'bob@example.com').execute();
  });

  test('idle and absolute expiry are enforced by the database', async () => {
    const c = new TestClient(t.app);
    await c.login('bob@example.com');
    await t.database.db.updateTable('chatbot_schema.session').set({ dtlast_seen: sql`now() - interval '8 days'` }).execute();
    assert.equal((await c.get('/chat')).statusCode, 303);
    await c.login('bob@example.com');
    await t.database.db.updateTable('chatbot_schema.session').set({ dtexpires: sql`now() - interval '1 second'` }).execute();
    assert.equal((await c.get('/chat')).statusCode, 303);
  });

  test('expired sessions are deleted when an app starts; live ones stay', async () => {
    const live = new TestClient(t.app);
    await live.login('ada@example.com');
    const stale = new TestClient(t.app);
    await stale.login('ada@example.com');
    const staleHash = createHash('sha256')
      .update(stale.cookies.get(sessionCookie) as string)
      .digest('hex');
    await t.database.db.updateTable('chatbot_schema.session').set({ dtexpires: sql`now() - interval '1 second'` }).where('idsession', '=', staleHash).execute();
    const second = await startTestApp({}, t.database);
    await second.close();
    const ids = (await t.database.db.selectFrom('chatbot_schema.session').select('idsession').execute()).map((r) => r.idsession);
    assert.ok(!ids.includes(staleHash));
    assert.equal((await live.get('/chat')).statusCode, 200);
  });

  test('only local paths are followed after sign-in', async () => {
    const c = new TestClient(t.app);
    await c.get('/login');
    const evil = await c.post('/login?next=//evil.example/x', { email: 'bob@example.com', password: DEFAULT_PASSWORD });
    assert.equal(evil.headers.location, '/chat');
    await c.get('/chat');
    await c.post('/logout', {});
    await c.get('/login');
    const good = await c.post('/login?next=%2Fsettings%2F2fa', { email: 'bob@example.com', password: DEFAULT_PASSWORD });
    assert.equal(good.headers.location, '/settings/2fa');
  });
});

describe('CSRF', () => {
  test('a POST without the token, with a wrong token or from another origin is 403 and changes nothing', async () => {
    const c = new TestClient(t.app);
    await c.get('/register');
    const fields = { username: 'Mallory', email: 'mallory@example.com', password: DEFAULT_PASSWORD };
    assert.equal((await c.post('/register', { ...fields, _csrf: null })).statusCode, 403);
    assert.equal((await c.post('/register', { ...fields, _csrf: 'x'.repeat(43) })).statusCode, 403);
    assert.equal((await c.post('/register', fields, { origin: 'https://evil.example' })).statusCode, 403);
    // Another visitor's valid token does not work for this one.
    const other = new TestClient(t.app);
    await other.get('/register');
    assert.equal((await c.post('/register', { ...fields, _csrf: other.csrf })).statusCode, 403);
    const n = await t.database.db.selectFrom('chatbot_schema.app_user').select('idappuser').where('txemail', '=', 'mallory@example.com').execute();
    assert.equal(n.length, 0);
  });

  test('with a loopback PUBLIC_URL, the same port on another loopback name is our origin; another port is not', async () => {
    const c = new TestClient(t.app);
    await c.get('/login');
    const fields = { email: 'bob@example.com', password: DEFAULT_PASSWORD };
    assert.equal((await c.post('/login', fields, { origin: 'http://127.0.0.1:5001' })).statusCode, 403);
    assert.equal((await c.post('/login', fields, { origin: 'http://127.0.0.1:5000' })).statusCode, 303);
  });

  test('logout without the token keeps the session', async () => {
    const c = new TestClient(t.app);
    await c.login('ada@example.com');
    assert.equal((await c.post('/logout', { _csrf: null })).statusCode, 403);
    assert.equal((await c.get('/chat')).statusCode, 200);
  });

  test('the token changes at sign-in (it is bound to the session)', async () => {
    const c = new TestClient(t.app);
    await c.get('/login');
    const anonymous = c.csrf;
    await c.post('/login', { email: 'ada@example.com', password: DEFAULT_PASSWORD });
    await c.get('/chat');
    assert.notEqual(c.csrf, anonymous);
    assert.equal((await c.post('/logout', { _csrf: anonymous })).statusCode, 403);
  });
});

describe('guards', () => {
  test('signed-out visitors are sent to /login; signed-in ones away from /login and /register', async () => {
    const anon = new TestClient(t.app);
    const res = await anon.get('/chat');
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login?next=%2Fchat');
    assert.equal((await anon.get('/')).headers.location, '/login');
    const c = new TestClient(t.app);
    await c.login('ada@example.com');
    assert.equal((await c.get('/login')).headers.location, '/chat');
    assert.equal((await c.get('/register')).headers.location, '/chat');
    assert.equal((await c.get('/')).headers.location, '/chat');
  });
});

describe('bad input around sign-in', () => {
  test('a repeated ?next= is ignored, not a 500, and the sign-in makes exactly one session', async () => {
    const c = new TestClient(t.app);
    assert.equal((await c.get('/login?next=/chat/1&next=/chat/2')).statusCode, 200);
    const before = await countRows(t.database, 'chatbot_schema.session');
    const res = await c.post('/login?next=/chat/1&next=/chat/2', { email: 'bob@example.com', password: DEFAULT_PASSWORD });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/chat');
    assert.equal(await countRows(t.database, 'chatbot_schema.session'), before + 1);
  });
});

describe('registration does not reveal which e-mails exist to anyone who asks often', () => {
  test('"this e-mail is taken" answers count against the address: after 20 the next is 429', async () => {
    const ip = '203.0.113.77';
    const answers: number[] = [];
    for (let i = 0; i < 21; i++) {
      const page = await t.app.inject({ method: 'GET', url: '/register', remoteAddress: ip });
      const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body)?.[1] ?? '';
      const csrf = (page.cookies as Array<{ name: string; value: string }>).find((x) => x.name === 'parley_csrf')?.value ?? '';
      const res = await t.app.inject({
        method: 'POST',
        url: '/register',
        remoteAddress: ip,
        cookies: { parley_csrf: csrf },
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf: token, username: 'Probe', email: 'bob@example.com', password: DEFAULT_PASSWORD }).toString(),
      });
      answers.push(res.statusCode);
    }
    assert.deepEqual(answers, [...Array(20).fill(409), 429]);
  });
});
