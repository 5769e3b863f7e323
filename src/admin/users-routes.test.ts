import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { TestClient } from '../../test/client.ts';
import { createSession } from '../auth/sessions.ts';
import { createUser, grantAdmin } from '../users/user-queries.ts';

let t: TestApp;
let n = 0;

before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t.close();
});

async function makeUser(opts: { username?: string; email?: string; admin?: boolean } = {}): Promise<{ id: number; username: string }> {
  n++;
  const username = opts.username ?? `user${n}`;
  const { id } = await createUser(t.database.db, { username, email: opts.email ?? `u${n}-${Date.now()}@example.com`, passwordHash: 'x' });
  if (opts.admin) await grantAdmin(t.database.db, id);
  return { id, username };
}

/** A browser signed in as `userId` (a session made directly: registration is throttled per address). */
async function browserOf(userId: number): Promise<TestClient> {
  const c = new TestClient(t.app);
  c.cookies.set('parley_session', await createSession(t.database.db, userId, {}));
  return c;
}

async function adminBrowser(): Promise<{ c: TestClient; id: number }> {
  const a = await makeUser({ admin: true });
  const c = await browserOf(a.id);
  const page = await c.get('/admin/users');
  assert.equal(page.statusCode, 200, page.body);
  return { c, id: a.id };
}

const db = () => t.database.db;
const roleNames = async (id: number) =>
  (
    await db()
      .selectFrom('chatbot_schema.user_role as ur')
      .innerJoin('chatbot_schema.role as r', 'r.idrole', 'ur.idrole')
      .select('r.txname')
      .where('ur.idappuser', '=', id)
      .orderBy('r.idrole')
      .execute()
  ).map((r) => r.txname);
const auditRows = (targetId: number) =>
  db()
    .selectFrom('chatbot_schema.admin_audit')
    .select(['txaction', 'idactor', 'txtarget', 'txip'])
    .where('idtarget', '=', targetId)
    .orderBy('idaudit')
    .execute();
const sessionCount = async (id: number) =>
  Number(
    (
      await db()
        .selectFrom('chatbot_schema.session')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('idappuser', '=', id)
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('GET /admin/users', () => {
  test('lists users with roles, status and sign-in methods, escaped', async () => {
    const { c } = await adminBrowser();
    const evil = await makeUser({ username: '<img src=x onerror=alert(1)>', email: `"><script>alert(2)</script>${n}@example.com` });
    const res = await c.get(`/admin/users?q=${encodeURIComponent('<img')}`);
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes(`data-user-id="${evil.id}"`));
    assert.ok(!res.body.includes('<img src=x'), 'username is escaped');
    assert.ok(!res.body.includes('<script>alert(2)'), 'e-mail is escaped');
    assert.ok(res.body.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.match(res.body, /password/);
  });

  test('sign-in methods: password, Google, both', async () => {
    const { c } = await adminBrowser();
    const g = await makeUser({ username: `googler${n}` });
    await sql`UPDATE chatbot_schema.app_user SET password = NULL WHERE idappuser = ${g.id}`.execute(db());
    await sql`INSERT INTO chatbot_schema.oauth_identity (txissuer, txsubject, idappuser) VALUES ('https://accounts.google.com', ${`sub-${g.id}`}, ${g.id})`.execute(
      db(),
    );
    const res = await c.get(`/admin/users?q=${g.username}`);
    const cell = new RegExp(`data-user-id="${g.id}"[\\s\\S]*?<td data-label="Sign-in">(google|password[^<]*)</td>`).exec(res.body);
    assert.equal(cell?.[1], 'google', res.body.slice(res.body.indexOf(`data-user-id="${g.id}"`), res.body.indexOf(`data-user-id="${g.id}"`) + 900));
  });

  test('a non-admin gets 403, a signed-out visitor goes to /login', async () => {
    const u = await makeUser();
    assert.equal((await (await browserOf(u.id)).get('/admin/users')).statusCode, 403);
    const anon = await new TestClient(t.app).get('/admin/users');
    assert.equal(anon.statusCode, 303);
    assert.match(String(anon.headers.location), /^\/login/);
  });

  test('bad or repeated query values are a 400 with a message', async () => {
    const { c } = await adminBrowser();
    for (const [url, message] of [
      ['/admin/users?page=0', 'page must be a page number.'],
      ['/admin/users?page=abc', 'page must be a page number.'],
      ['/admin/users?page=999999', 'page must be'],
      ['/admin/users?sort=password', 'sort must be'],
      ['/admin/users?status=maybe', 'status must be'],
      ['/admin/users?q=a&q=b', 'The parameter q must be given once.'],
      ['/admin/users?page=1&page=2', 'The parameter page must be given once.'],
      [`/admin/users?q=${'x'.repeat(201)}`, 'The search is too long'],
    ] as const) {
      const res = await c.get(url);
      assert.equal(res.statusCode, 400, url);
      assert.ok(res.body.includes(message), `${url}: ${message}`);
    }
  });

  describe('search, filters, sort and pages', () => {
    const prefix = `zq${Date.now().toString(36)}`;
    let admin: TestClient;
    before(async () => {
      admin = (await adminBrowser()).c;
      // 120 users with the prefix, in one statement; every third deactivated, every fifth with 2FA, user 7 an admin.
      await sql`
        INSERT INTO chatbot_schema.app_user (txusername, txemail, password, is_active, is_2fa_enabled, nprompts, dtcreated)
        SELECT ${prefix} || lpad(i::text, 3, '0'), ${prefix} || i || '@Example.COM', 'x', i % 3 <> 0, i % 5 = 0, i, now() - make_interval(days => i)
        FROM generate_series(1, 120) i`.execute(db());
      await sql`INSERT INTO chatbot_schema.user_role (idappuser, idrole) SELECT idappuser, 2 FROM chatbot_schema.app_user WHERE txusername LIKE ${`${prefix}%`}`.execute(
        db(),
      );
      await sql`INSERT INTO chatbot_schema.user_role (idappuser, idrole) SELECT idappuser, 1 FROM chatbot_schema.app_user WHERE txusername = ${`${prefix}007`}`.execute(
        db(),
      );
    });
    const ids = (body: string) => [...body.matchAll(/data-user-id="(\d+)"/g)].map((m) => Number(m[1]));
    const names = (body: string) => [...body.matchAll(/<a href="\/admin\/users\/\d+">([^<]+)<\/a>/g)].map((m) => m[1]);
    const total = (body: string) => Number(/data-total="(\d+)"/.exec(body)?.[1]);

    test('?q= is a case-insensitive substring of username or e-mail; 50 a page in username order', async () => {
      const res = await admin.get(`/admin/users?q=${prefix.toUpperCase()}`);
      assert.equal(total(res.body), 120);
      assert.equal(ids(res.body).length, 50);
      assert.deepEqual(names(res.body).slice(0, 2), [`${prefix}001`, `${prefix}002`]);
      const byMail = await admin.get(`/admin/users?q=${encodeURIComponent(`${prefix}42@example`)}`);
      assert.deepEqual(names(byMail.body), [`${prefix}042`]);
      const page3 = await admin.get(`/admin/users?q=${prefix}&page=3`);
      assert.equal(ids(page3.body).length, 20);
      assert.equal(names(page3.body)[0], `${prefix}101`);
      assert.ok(page3.body.includes(`href="/admin/users?q=${prefix}&amp;page=2"`), 'page links keep the search');
    });

    test('one- and two-character searches find substrings too', async () => {
      // The last two characters of the prefix: at least the 40 deactivated users made here (others may match too).
      const res = await admin.get(`/admin/users?q=${prefix.slice(-2)}&status=deactivated`);
      assert.ok(total(res.body) >= 40, String(total(res.body)));
      const one = await admin.get(`/admin/users?q=${encodeURIComponent(`${prefix}119`.slice(-2))}&sort=prompts`);
      assert.ok(names(one.body).includes(`${prefix}119`), 'a two-character search finds a substring in the middle');
    });

    test('a search counts at most 10,000 matches ("10000+")', async () => {
      const cap = `cap${prefix}`;
      await sql`INSERT INTO chatbot_schema.app_user (txusername, txemail, password) SELECT ${cap} || i, ${cap} || i || '@example.com', 'x' FROM generate_series(1, 10001) i`.execute(
        db(),
      );
      const res = await admin.get(`/admin/users?q=${cap}`);
      assert.equal(total(res.body), 10000);
      assert.match(res.body, /of 10000\+ users/);
      await sql`DELETE FROM chatbot_schema.app_user WHERE txusername LIKE ${`${cap}%`}`.execute(db());
    });

    test('LIKE wildcards in ?q= are literal characters', async () => {
      const res = await admin.get(`/admin/users?q=${encodeURIComponent(`${prefix}_0`)}`);
      assert.equal(total(res.body), 0);
      const pct = await admin.get(`/admin/users?q=${encodeURIComponent('%')}`);
      assert.equal(pct.statusCode, 200);
    });

    test('filters: deactivated, active, admins, 2FA off', async () => {
      assert.equal(total((await admin.get(`/admin/users?q=${prefix}&status=deactivated`)).body), 40);
      assert.equal(total((await admin.get(`/admin/users?q=${prefix}&status=active`)).body), 80);
      assert.deepEqual(names((await admin.get(`/admin/users?q=${prefix}&role=admin`)).body), [`${prefix}007`]);
      assert.equal(total((await admin.get(`/admin/users?q=${prefix}&twofa=off`)).body), 96);
      const both = await admin.get(`/admin/users?q=${prefix}&status=deactivated&twofa=off&sort=prompts`);
      assert.equal(total(both.body), 32); // multiples of 3 that are not multiples of 15
      assert.ok(both.body.includes(`href="/admin/users?q=${prefix}&amp;status=deactivated&amp;twofa=off&amp;sort=created"`), 'sort links keep filters');
    });

    test('a passkey is a second factor: the 2FA column names it and "2FA off" leaves its owner out', async () => {
      // User 1 has no TOTP (1 % 5 <> 0); two passkeys make them protected. User 5 has TOTP and one passkey.
      await sql`
        INSERT INTO chatbot_schema.passkey (idappuser, txcredential_id, txpublic_key, txname)
        SELECT u.idappuser, u.txusername || k, 'key', 'Laptop ' || k
        FROM chatbot_schema.app_user u, generate_series(1, 2) k
        WHERE u.txusername = ${`${prefix}001`} OR (u.txusername = ${`${prefix}005`} AND k = 1)`.execute(db());
      try {
        assert.equal(total((await admin.get(`/admin/users?q=${prefix}&twofa=off`)).body), 95);
        const page = (await admin.get(`/admin/users?q=${prefix}`)).body;
        const cell = (name: string) => new RegExp(`>${name}</a>[\\s\\S]*?data-label="2FA">([^<]*)<`).exec(page)?.[1];
        assert.equal(cell(`${prefix}001`), '2 passkeys');
        assert.equal(cell(`${prefix}005`), 'TOTP + passkey');
        assert.equal(cell(`${prefix}010`), 'TOTP');
      } finally {
        await sql`DELETE FROM chatbot_schema.passkey WHERE txname LIKE 'Laptop %' AND txcredential_id LIKE ${`${prefix}%`}`.execute(db());
      }
    });

    test('sort by created (newest first), prompts (most first), last sign-in (never last)', async () => {
      assert.equal(names((await admin.get(`/admin/users?q=${prefix}&sort=created`)).body)[0], `${prefix}001`);
      assert.equal(names((await admin.get(`/admin/users?q=${prefix}&sort=prompts`)).body)[0], `${prefix}120`);
      await sql`UPDATE chatbot_schema.app_user SET dtlast_login = now() WHERE txusername = ${`${prefix}050`}`.execute(db());
      assert.equal(names((await admin.get(`/admin/users?q=${prefix}&sort=last-sign-in`)).body)[0], `${prefix}050`);
    });

    test('the whole page is the session check and three statements, none per row', async () => {
      const before = await statementsRun(() => admin.get(`/admin/users?q=${prefix}`));
      assert.ok(before <= 4, `statements: ${before}`); // the session check + the page + the count + the bulk form's groups
    });
  });
});

/** Statements the app sends through Kysely while `run` runs (a per-row query could not hide from this). */
async function statementsRun(run: () => Promise<unknown>): Promise<number> {
  let count = 0;
  const executor = t.database.db.getExecutor();
  const original = executor.executeQuery.bind(executor);
  executor.executeQuery = (async (...args: Parameters<typeof original>) => {
    count++;
    return original(...args);
  }) as typeof original;
  try {
    await run();
  } finally {
    executor.executeQuery = original;
  }
  return count;
}

describe('actions', () => {
  let admin: TestClient;
  let adminId: number;
  beforeEach(async () => {
    ({ c: admin, id: adminId } = await adminBrowser());
  });

  test('promote is idempotent, demote takes the role back; each change writes one audit row', async () => {
    const u = await makeUser();
    const res = await admin.post(`/admin/users/${u.id}/promote`, { back: '?q=user&page=1' });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/admin/users?q=user&page=1');
    assert.deepEqual(await roleNames(u.id), ['Admin', 'User']);
    const again = await admin.post(`/admin/users/${u.id}/promote`);
    assert.equal(again.statusCode, 303);
    assert.deepEqual(await roleNames(u.id), ['Admin', 'User']);
    await admin.post(`/admin/users/${u.id}/demote`);
    assert.deepEqual(await roleNames(u.id), ['User']);
    const rows = await auditRows(u.id);
    assert.deepEqual(
      rows.map((r) => [r.txaction, r.idactor, r.txtarget]),
      [
        ['promote', adminId, u.username],
        ['demote', adminId, u.username],
      ],
    );
    const page = await admin.get('/admin/users');
    assert.ok(page.body.includes('demoted to User'), 'the flash says what happened');
  });

  test('back can only be a query string of the list (no open redirect)', async () => {
    const u = await makeUser();
    for (const back of ['https://evil.example/', '//evil.example', '/chat', '?x=<script>']) {
      const res = await admin.post(`/admin/users/${u.id}/promote`, { back });
      assert.equal(res.headers.location, '/admin/users', back);
    }
  });

  test('an admin cannot demote or deactivate themself (409 with the reason, nothing changed)', async () => {
    const demote = await admin.post(`/admin/users/${adminId}/demote`);
    assert.equal(demote.statusCode, 409);
    assert.match(demote.body, /You cannot demote yourself/);
    const deactivate = await admin.post(`/admin/users/${adminId}/deactivate`);
    assert.equal(deactivate.statusCode, 409);
    assert.match(deactivate.body, /You cannot deactivate yourself/);
    assert.deepEqual(await roleNames(adminId), ['Admin', 'User']);
    assert.deepEqual(await auditRows(adminId), []);
  });

  test('two admins removing each other in turn: the second is refused, an active admin remains', async () => {
    const other = await makeUser({ admin: true });
    const otherBrowser = await browserOf(other.id);
    await otherBrowser.get('/admin/users');
    const first = await admin.post(`/admin/users/${other.id}/deactivate`);
    assert.equal(first.statusCode, 303);
    const second = await otherBrowser.post(`/admin/users/${adminId}/deactivate`);
    // Signed out by the deactivation: refused by the CSRF check (its token was bound to the deleted session) or the guard.
    assert.ok(second.statusCode === 403 || String(second.headers.location).startsWith('/login'), `refused (${second.statusCode})`);
    assert.deepEqual(await roleNames(adminId), ['Admin', 'User']);
  });

  test('a demoted admin loses admin pages on their next request', async () => {
    const other = await makeUser({ admin: true });
    const otherBrowser = await browserOf(other.id);
    assert.equal((await otherBrowser.get('/admin/users')).statusCode, 200);
    assert.equal((await admin.post(`/admin/users/${other.id}/demote`)).statusCode, 303);
    assert.equal((await otherBrowser.get('/admin/users')).statusCode, 403);
    assert.equal((await otherBrowser.get('/admin/models')).statusCode, 403);
    assert.equal((await otherBrowser.get('/chat')).statusCode, 200, 'still signed in as a user');
  });

  test('deactivation ends every session and stops running answers; reactivation revives no session', async () => {
    const u = await makeUser();
    const browser = await browserOf(u.id);
    await browserOf(u.id); // a second device
    assert.equal((await browser.get('/chat')).statusCode, 200);
    const [llm] = await sql<{
      idllm: number;
    }>`INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES (${`m${n}`}, 'http://127.0.0.1:9/v1', 'x') RETURNING idllm`
      .execute(db())
      .then((r) => r.rows);
    const [chat] = await sql<{ idchat: number }>`INSERT INTO chatbot_schema.chat (idappuser, idllm) VALUES (${u.id}, ${llm?.idllm}) RETURNING idchat`
      .execute(db())
      .then((r) => r.rows);
    const [msg] = await sql<{ idmessage: number }>`INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chat?.idchat}, 'hi') RETURNING idmessage`
      .execute(db())
      .then((r) => r.rows);
    await sql`INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txstatus) VALUES (${chat?.idchat}, ${msg?.idmessage}, ${llm?.idllm}, 'streaming'), (${chat?.idchat}, ${msg?.idmessage}, ${llm?.idllm}, 'complete')`.execute(
      db(),
    );
    assert.equal(await sessionCount(u.id), 2);

    const res = await admin.post(`/admin/users/${u.id}/deactivate`);
    assert.equal(res.statusCode, 303);
    assert.equal(await sessionCount(u.id), 0);
    const stops = await sql<{
      txstatus: string;
      is_stop_requested: boolean;
    }>`SELECT txstatus, is_stop_requested FROM chatbot_schema.response WHERE idchat = ${chat?.idchat} ORDER BY idresponse`.execute(db());
    assert.deepEqual(
      stops.rows.map((r) => [r.txstatus, r.is_stop_requested]),
      [
        ['streaming', true],
        ['complete', false],
      ],
    );
    const next = await browser.get('/chat');
    assert.equal(next.statusCode, 303, 'the deactivated user is out at their next request');
    assert.match(String(next.headers.location), /^\/login/);
    assert.equal((await admin.post(`/admin/users/${u.id}/reactivate`)).statusCode, 303);
    assert.match(String((await browser.get('/chat')).headers.location), /^\/login/, 'the old session stays dead');
    assert.deepEqual(
      (await auditRows(u.id)).map((r) => r.txaction),
      ['deactivate', 'reactivate'],
    );
  });

  test('a prompt counts once in the list (the trigger of migration 010)', async () => {
    const u = await makeUser();
    const [llm] = await sql<{
      idllm: number;
    }>`INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES (${`p${n}`}, 'http://127.0.0.1:9/v1', 'x') RETURNING idllm`
      .execute(db())
      .then((r) => r.rows);
    const [chat] = await sql<{ idchat: number }>`INSERT INTO chatbot_schema.chat (idappuser, idllm) VALUES (${u.id}, ${llm?.idllm}) RETURNING idchat`
      .execute(db())
      .then((r) => r.rows);
    await sql`INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chat?.idchat}, 'one'), (${chat?.idchat}, 'two')`.execute(db());
    const row = await db().selectFrom('chatbot_schema.app_user').select('nprompts').where('idappuser', '=', u.id).executeTakeFirstOrThrow();
    assert.equal(row.nprompts, 2);
  });

  test('bulk: deactivate, reactivate and sign out everywhere in one transaction, one audit row each', async () => {
    const a = await makeUser();
    const b = await makeUser();
    await browserOf(a.id);
    await browserOf(b.id);
    const form = new URLSearchParams({ _csrf: admin.csrf, action: 'sign-out-everywhere', back: '?sort=created' });
    form.append('ids', String(a.id));
    form.append('ids', String(b.id));
    const res = await t.app.inject({
      method: 'POST',
      url: '/admin/users/bulk',
      payload: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
    });
    assert.equal(res.statusCode, 303, res.body);
    assert.equal(res.headers.location, '/admin/users?sort=created');
    assert.equal((await sessionCount(a.id)) + (await sessionCount(b.id)), 0);
    assert.deepEqual(
      (await auditRows(a.id)).map((r) => r.txaction),
      ['sign-out-everywhere'],
    );
    assert.deepEqual(
      (await auditRows(b.id)).map((r) => r.txaction),
      ['sign-out-everywhere'],
    );

    // One missing id refuses the whole batch: nothing is deactivated.
    const bad = await admin.post('/admin/users/bulk', { action: 'deactivate', ids: '999999' });
    assert.equal(bad.statusCode, 404);
    const withSelf = new URLSearchParams({ _csrf: admin.csrf, action: 'deactivate' });
    withSelf.append('ids', String(a.id));
    withSelf.append('ids', String(adminId));
    const refused = await t.app.inject({
      method: 'POST',
      url: '/admin/users/bulk',
      payload: withSelf.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: admin.cookieHeader() },
    });
    assert.equal(refused.statusCode, 409);
    const stillActive = await db().selectFrom('chatbot_schema.app_user').select('is_active').where('idappuser', '=', a.id).executeTakeFirstOrThrow();
    assert.equal(stillActive.is_active, true, 'the refused batch changed nobody');
    assert.equal((await admin.post('/admin/users/bulk', { action: 'explode', ids: String(a.id) })).statusCode, 400);
    assert.equal((await admin.post('/admin/users/bulk', { action: 'deactivate' })).statusCode, 400);
  });

  test('actions need the CSRF token and an admin', async () => {
    const u = await makeUser();
    assert.equal((await admin.post(`/admin/users/${u.id}/promote`, { _csrf: null })).statusCode, 403);
    assert.equal((await admin.post(`/admin/users/${u.id}/promote`, { _csrf: 'forged' })).statusCode, 403);
    const plain = await browserOf(u.id);
    await plain.get('/chat');
    assert.equal((await plain.post(`/admin/users/${u.id}/promote`)).statusCode, 403);
    assert.deepEqual(await roleNames(u.id), ['User']);
    assert.equal((await admin.post('/admin/users/999999/promote')).statusCode, 404);
    assert.equal((await admin.post('/admin/users/abc/promote')).statusCode, 404);
  });
});
