import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestApp, type TestApp } from '../../test/app.ts';
import { DEFAULT_PASSWORD, TestClient } from '../../test/client.ts';
import { createSession } from '../auth/sessions.ts';
import { createUser, grantAdmin } from '../users/user-queries.ts';
import { csvField } from './csv.ts';

let t: TestApp;
let n = 0;
let admin: TestClient;
let adminId: number;

before(async () => {
  t = await startTestApp();
  const a = await makeUser({ admin: true });
  adminId = a.id;
  admin = await browserOf(a.id);
  await admin.get('/admin/users');
});
after(async () => {
  await t.close();
});

const db = () => t.database.db;

async function makeUser(opts: { username?: string; admin?: boolean } = {}): Promise<{ id: number; username: string; email: string }> {
  n++;
  const username = opts.username ?? `person${n}`;
  const email = `p${n}@example.com`;
  const { id } = await createUser(db(), { username, email, passwordHash: 'x' });
  if (opts.admin) await grantAdmin(db(), id);
  return { id, username, email };
}

async function browserOf(userId: number, userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0'): Promise<TestClient> {
  const c = new TestClient(t.app);
  c.cookies.set('parley_session', await createSession(db(), userId, { userAgent, ip: '192.0.2.7' }));
  return c;
}

const sessions = async (id: number) =>
  Number(
    (
      await db()
        .selectFrom('chatbot_schema.session')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('idappuser', '=', id)
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('GET /admin/users/:id', () => {
  test('profile, sessions, usage and audit history; escaped', async () => {
    const u = await makeUser({ username: '<b>bold</b>' });
    await browserOf(u.id, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1');
    const [llm] = (
      await sql<{
        idllm: number;
      }>`INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('Model <i>x</i>', 'http://127.0.0.1:9/v1', 'x') RETURNING idllm`.execute(
        db(),
      )
    ).rows;
    const [chat] = (
      await sql<{ idchat: number }>`INSERT INTO chatbot_schema.chat (idappuser, idllm) VALUES (${u.id}, ${llm?.idllm}) RETURNING idchat`.execute(db())
    ).rows;
    await sql`INSERT INTO chatbot_schema.message (idchat, txmessage) VALUES (${chat?.idchat}, 'a'), (${chat?.idchat}, 'b')`.execute(db());
    await admin.post(`/admin/users/${u.id}/promote`, { back: 'detail' });
    const res = await admin.get(`/admin/users/${u.id}`);
    assert.equal(res.statusCode, 200);
    assert.ok(!res.body.includes('<b>bold</b>') && res.body.includes('&lt;b&gt;bold&lt;/b&gt;'), 'username escaped');
    assert.ok(!res.body.includes('<i>x</i>'), 'model name escaped');
    assert.match(res.body, /Safari on iOS/);
    assert.match(res.body, /192\.0\.2\.7/);
    assert.match(res.body, /<td class="text-end">2<\/td><td class="text-end">0<\/td>/, '2 prompts, 0 answers');
    assert.match(res.body, /changed the role of <a href="\/admin\/users\/\d+">&lt;b&gt;bold&lt;\/b&gt;<\/a> from User to Admin/, 'audit history');
    assert.equal((await admin.get('/admin/users/999999')).statusCode, 404);
  });

  test('back=detail returns to the user page', async () => {
    const u = await makeUser();
    const res = await admin.post(`/admin/users/${u.id}/deactivate`, { back: 'detail' });
    assert.equal(res.headers.location, `/admin/users/${u.id}`);
  });

  test('revoke one session, sign out everywhere; each audited', async () => {
    const u = await makeUser();
    const phone = await browserOf(u.id);
    const laptop = await browserOf(u.id);
    const [first] = await db().selectFrom('chatbot_schema.session').select('idsession').where('idappuser', '=', u.id).orderBy('dtcreated').execute();
    const revoked = await admin.post(`/admin/users/${u.id}/sessions/revoke`, { session: first?.idsession });
    assert.equal(revoked.statusCode, 303);
    assert.equal(await sessions(u.id), 1);
    assert.equal((await admin.post(`/admin/users/${u.id}/sessions/revoke`, { session: 'nope' })).statusCode, 400);
    await admin.post(`/admin/users/${u.id}/sign-out-everywhere`);
    assert.equal(await sessions(u.id), 0);
    for (const c of [phone, laptop]) assert.match(String((await c.get('/chat')).headers.location), /^\/login/);
    const rows = await db().selectFrom('chatbot_schema.admin_audit').select('txaction').where('idtarget', '=', u.id).orderBy('idaudit').execute();
    assert.deepEqual(
      rows.map((r) => r.txaction),
      ['revoke-session', 'sign-out-everywhere'],
    );
  });

  test('reset 2FA clears it, ends sessions, and is audited', async () => {
    const u = await makeUser();
    await sql`UPDATE chatbot_schema.app_user SET is_2fa_enabled = TRUE WHERE idappuser = ${u.id}`.execute(db());
    await browserOf(u.id);
    const res = await admin.post(`/admin/users/${u.id}/reset-2fa`);
    assert.equal(res.statusCode, 303);
    const row = await db().selectFrom('chatbot_schema.app_user').select('is_2fa_enabled').where('idappuser', '=', u.id).executeTakeFirstOrThrow();
    assert.equal(row.is_2fa_enabled, false);
    assert.equal(await sessions(u.id), 0);
    const audit = await db().selectFrom('chatbot_schema.admin_audit').select('txaction').where('idtarget', '=', u.id).execute();
    assert.deepEqual(
      audit.map((r) => r.txaction),
      ['reset-2fa'],
    );
  });
});

describe('one-time password reset link', () => {
  const linkOf = (body: string) => {
    const m = /value="(http[^"]+\/reset-password\/([A-Za-z0-9_-]+))"/.exec(body);
    assert.ok(m, 'the page shows the link');
    return { url: new URL(m[1] as string).pathname, token: m[2] as string };
  };

  test('shown once, stored hashed; using it sets the password and ends every session; single use', async () => {
    const u = await makeUser();
    const old = await browserOf(u.id);
    const res = await admin.post(`/admin/users/${u.id}/reset-link`);
    assert.equal(res.statusCode, 200);
    const { url, token } = linkOf(res.body);
    const stored = await db().selectFrom('chatbot_schema.password_reset').select('idtoken').where('idappuser', '=', u.id).execute();
    assert.equal(stored.length, 1);
    assert.notEqual(stored[0]?.idtoken, token, 'only the hash is stored');
    assert.ok(!(await admin.get(`/admin/users/${u.id}`)).body.includes(token), 'the user page never shows it again');

    const visitor = new TestClient(t.app);
    const page = await visitor.get(url);
    assert.equal(page.statusCode, 200);
    const weak = await visitor.post(url, { password: 'short' });
    assert.equal(weak.statusCode, 400);
    const done = await visitor.post(url, { password: 'a brand new passphrase' });
    assert.equal(done.statusCode, 303);
    assert.match(String((await old.get('/chat')).headers.location), /^\/login/, 'old sessions ended');
    const login = new TestClient(t.app);
    assert.equal((await login.login(u.email, 'a brand new passphrase')).statusCode, 303);
    assert.equal((await login.get('/chat')).statusCode, 200, 'the new password signs in');

    const again = await new TestClient(t.app).get(url);
    assert.equal(again.statusCode, 404, 'single use');
    const audit = await db().selectFrom('chatbot_schema.admin_audit').select('txaction').where('idtarget', '=', u.id).execute();
    assert.deepEqual(
      audit.map((r) => r.txaction),
      ['create-reset-link'],
    );
  });

  test('expires after an hour; a newer link voids the older one; a deactivated account cannot use it', async () => {
    const u = await makeUser();
    const first = linkOf((await admin.post(`/admin/users/${u.id}/reset-link`)).body);
    const second = linkOf((await admin.post(`/admin/users/${u.id}/reset-link`)).body);
    assert.equal((await new TestClient(t.app).get(first.url)).statusCode, 404, 'voided by the newer link');
    assert.equal((await new TestClient(t.app).get(second.url)).statusCode, 200);
    await sql`UPDATE chatbot_schema.password_reset SET dtexpires = now() - interval '1 second' WHERE idappuser = ${u.id}`.execute(db());
    const expired = new TestClient(t.app);
    assert.equal((await expired.get(second.url)).statusCode, 404, 'expired');
    const third = linkOf((await admin.post(`/admin/users/${u.id}/reset-link`)).body);
    await admin.post(`/admin/users/${u.id}/deactivate`);
    assert.equal((await new TestClient(t.app).get(third.url)).statusCode, 404, 'deactivated');
    assert.equal((await admin.post(`/admin/users/${u.id}/reset-link`)).statusCode, 400);
    assert.equal((await new TestClient(t.app).get('/reset-password/short')).statusCode, 404);
  });
});

describe('admin-created accounts', () => {
  test('with a password or Google only, as User or Admin; audited; form errors re-render', async () => {
    assert.equal((await admin.get('/admin/users/new')).statusCode, 200);
    const res = await admin.post('/admin/users/new', {
      username: 'Made',
      email: 'made@example.com',
      role: 'admin',
      signIn: 'password',
      password: DEFAULT_PASSWORD,
    });
    assert.equal(res.statusCode, 303, res.body);
    const made = await db()
      .selectFrom('chatbot_schema.app_user')
      .select(['idappuser', 'password'])
      .where('txemail', '=', 'made@example.com')
      .executeTakeFirstOrThrow();
    assert.equal(res.headers.location, `/admin/users/${made.idappuser}`);
    const roles = await db().selectFrom('chatbot_schema.user_role').select('idrole').where('idappuser', '=', made.idappuser).orderBy('idrole').execute();
    assert.deepEqual(
      roles.map((r) => r.idrole),
      [1, 2],
    );
    assert.equal((await new TestClient(t.app).login('made@example.com')).statusCode, 303);

    const google = await admin.post('/admin/users/new', { username: 'G', email: 'g@example.com', role: 'user', signIn: 'google' });
    assert.equal(google.statusCode, 303);
    const g = await db().selectFrom('chatbot_schema.app_user').select('password').where('txemail', '=', 'g@example.com').executeTakeFirstOrThrow();
    assert.equal(g.password, null);

    const taken = await admin.post('/admin/users/new', { username: 'Again', email: 'MADE@example.com', signIn: 'password', password: DEFAULT_PASSWORD });
    assert.equal(taken.statusCode, 400);
    assert.match(taken.body, /already exists/);
    const weak = await admin.post('/admin/users/new', { username: 'Weak', email: 'weak@example.com', signIn: 'password', password: 'x' });
    assert.equal(weak.statusCode, 400);
    assert.match(weak.body, /at least 8/);
    const audit = await db()
      .selectFrom('chatbot_schema.admin_audit')
      .select(['txaction', 'idactor', 'jsdetails'])
      .where('txaction', '=', 'create-user')
      .execute();
    assert.equal(audit.length, 2);
    assert.equal(audit[0]?.idactor, adminId);
  });
});

describe('GET /admin/audit', () => {
  test('newest first, filters, 400 on bad values, escaped', async () => {
    const u = await makeUser({ username: '<script>x</script>' });
    await admin.post(`/admin/users/${u.id}/promote`);
    await admin.post(`/admin/users/${u.id}/demote`);
    const res = await admin.get(`/admin/audit?target=${u.id}`);
    assert.equal(res.statusCode, 200);
    const actions = [...res.body.matchAll(/data-action="([a-z0-9-]+)"/g)].map((m) => m[1]);
    assert.deepEqual(actions, ['demote', 'promote']);
    assert.ok(!res.body.includes('<script>x</script>'));
    assert.deepEqual(
      [...(await admin.get(`/admin/audit?target=${u.id}&action=promote`)).body.matchAll(/data-action="([a-z0-9-]+)"/g)].map((m) => m[1]),
      ['promote'],
    );
    for (const bad of ['?target=abc', '?action=drop', '?page=0', '?format=xml', '?actor=1&actor=2']) {
      assert.equal((await admin.get(`/admin/audit${bad}`)).statusCode, 400, bad);
    }
  });

  test('CSV: RFC 4180 quoting and formula cells defused', async () => {
    const u = await makeUser({ username: '=HYPERLINK("http://evil.example","click"), "quoted"' });
    await admin.post(`/admin/users/${u.id}/promote`);
    const res = await admin.get(`/admin/audit?format=csv&target=${u.id}`);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    const lines = res.body.split('\r\n');
    assert.equal(lines[0], 'id,time_utc,admin_id,admin,action,user_id,user,details,ip,summary');
    assert.ok(lines[1]?.includes(`,"'=HYPERLINK(""http://evil.example"",""click""), ""quoted""",`), lines[1]);
    assert.equal(csvField('-1+2'), "'-1+2");
    assert.equal(csvField('a\nb'), '"a\nb"');
    assert.equal(csvField(-3), '-3', 'numbers are numbers');
  });
});
