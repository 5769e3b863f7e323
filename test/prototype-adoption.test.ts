import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { createSession } from '../src/auth/sessions.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { findUserByEmail } from '../src/users/user-queries.ts';
import { startTestApp } from './app.ts';
import { TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';

/**
 * A database made by the Flask prototype (test/fixtures/flask-prototype.sql) is adopted in place: the
 * migrations add what is missing around the existing rows, and the app runs on the result.
 */
const fixture = readFileSync(path.join(import.meta.dirname, 'fixtures/flask-prototype.sql'), 'utf8');

let database: OpenedDatabase;
let snapshot: Record<string, unknown[]>;

/** The prototype's own columns only, so the comparison ignores what the migrations add. */
const prototypeQueries = {
  app_user: sql`SELECT idappuser, txusername, txemail, password FROM chatbot_schema.app_user ORDER BY idappuser`,
  role: sql`SELECT idrole, txname FROM chatbot_schema.role ORDER BY idrole`,
  user_role: sql`SELECT idappuser, idrole FROM chatbot_schema.user_role ORDER BY idappuser, idrole`,
  llm: sql`SELECT idllm, txshortname FROM chatbot_schema.llm ORDER BY idllm`,
  chat: sql`SELECT idchat, idappuser, idllm FROM chatbot_schema.chat ORDER BY idchat`,
  message: sql`SELECT idmessage, idchat, txmessage FROM chatbot_schema.message ORDER BY idmessage`,
  response: sql`SELECT idchat, idmessage, idllm, txcontent, txmarkdown FROM chatbot_schema.response ORDER BY idmessage`,
};

async function readPrototypeRows(): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, query] of Object.entries(prototypeQueries)) out[table] = (await query.execute(database.db)).rows;
  return out;
}

before(async () => {
  database = await openTestDatabase({ migrate: false });
  await sql.raw(fixture).execute(database.db);
  snapshot = await readPrototypeRows();
});
after(() => database.close());

test('the fixture really is the old shape (no columns from the ALTERs yet)', async () => {
  const columns = await sql<{ column_name: string }>`
    SELECT column_name FROM information_schema.columns
    WHERE table_schema = 'chatbot_schema' AND table_name IN ('app_user', 'response')`.execute(database.db);
  const names = columns.rows.map((c) => c.column_name);
  for (const added of ['is_active', 'totp_secret', 'is_2fa_enabled', 'tinf_start', 'tinf_end', 'idresponse']) assert.ok(!names.includes(added), added);
  assert.equal(snapshot.app_user?.length, 3);
  assert.equal(snapshot.response?.length, 3);
});

test('migrating twice applies every migration once, then nothing', async () => {
  const first = await migrateToLatest(database.db);
  assert.ok(first.includes('001-foundation'), first.join());
  assert.deepEqual(await migrateToLatest(database.db), []);
});

test('every prototype row is intact', async () => {
  assert.deepEqual(await readPrototypeRows(), snapshot);
});

test('the added columns exist with their defaults on the old rows', async () => {
  const users = await database.db.selectFrom('chatbot_schema.app_user').select(['is_active', 'is_2fa_enabled', 'totp_secret']).execute();
  assert.equal(users.length, 3);
  for (const u of users) assert.deepEqual(u, { is_active: true, is_2fa_enabled: false, totp_secret: null });

  const defaults = await sql<{ column_name: string; column_default: string | null; is_nullable: string }>`
    SELECT column_name, column_default, is_nullable FROM information_schema.columns
    WHERE table_schema = 'chatbot_schema' AND table_name = 'app_user'
      AND column_name IN ('is_active', 'is_2fa_enabled', 'password')
    ORDER BY column_name`.execute(database.db);
  assert.deepEqual(
    defaults.rows.map((c) => [c.column_name, c.column_default?.toLowerCase() ?? null, c.is_nullable]),
    [
      ['is_2fa_enabled', 'false', 'NO'],
      ['is_active', 'true', 'NO'],
      // Google-only accounts have no password.
      ['password', null, 'YES'],
    ],
  );

  const responses = await database.db
    .selectFrom('chatbot_schema.response')
    .select(['idresponse', 'tinf_start', 'tinf_end', 'txstatus'])
    .orderBy('idresponse')
    .execute();
  assert.equal(responses.length, 3);
  assert.equal(new Set(responses.map((r) => r.idresponse)).size, 3);
  for (const r of responses) {
    assert.equal(typeof r.idresponse, 'number');
    assert.equal(r.tinf_start, null);
    assert.equal(r.tinf_end, null);
    assert.equal(r.txstatus, 'complete');
  }
  // A new response gets the next id from the identity, after the adopted ones.
  const inserted = await database.db
    .insertInto('chatbot_schema.response')
    .values({ idchat: 1, idmessage: 1, idllm: 1, txcontent: 'x', txmarkdown: 'x' })
    .returning('idresponse')
    .executeTakeFirstOrThrow();
  assert.ok(inserted.idresponse > Math.max(...responses.map((r) => r.idresponse)));
  await database.db.deleteFrom('chatbot_schema.response').where('idresponse', '=', inserted.idresponse).execute();
});

test('the app runs on the adopted database', async () => {
  const t = await startTestApp({}, database);
  try {
    const alice = await findUserByEmail(database.db, 'Alice@Example.com');
    assert.deepEqual(alice && { id: alice.id, username: alice.username, isActive: alice.isActive }, { id: 1, username: 'Alice', isActive: true });

    // A prototype admin's session works, and the navbar knows they are an Admin.
    const token = await createSession(database.db, 1, {});
    const page = await t.app.inject({ method: 'GET', url: '/chat', cookies: { parley_session: token } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /href="\/admin\/users"/);
    assert.match(page.body, /Alice/);

    // Registration works, gets the next id, and is not Admin: the prototype already has users.
    const c = new TestClient(t.app);
    const res = await c.register({ username: 'Dave', email: 'dave@example.com' });
    assert.equal(res.statusCode, 303);
    const roles = await sql<{ idappuser: number; idrole: number }>`
      SELECT ur.idappuser, ur.idrole FROM chatbot_schema.user_role ur
      JOIN chatbot_schema.app_user u USING (idappuser) WHERE u.txemail = 'dave@example.com'`.execute(database.db);
    assert.deepEqual(roles.rows, [{ idappuser: 4, idrole: 2 }]);
    // The e-mail uniqueness the prototype had still holds, now case-insensitively.
    assert.equal((await new TestClient(t.app).register({ username: 'Bob 2', email: 'BOB@example.com' })).statusCode, 409);
  } finally {
    await t.close();
  }
});

test('prototype users sign in with their old password, which is then rehashed with argon2id', async () => {
  const t = await startTestApp({}, database);
  try {
    for (const email of ['alice@example.com', 'bob@example.com']) {
      assert.equal((await new TestClient(t.app).login(email, 'wrong password')).statusCode, 401);
      const res = await new TestClient(t.app).login(email, 'prototype password');
      assert.equal(res.statusCode, 303, email);
      const row = await database.db.selectFrom('chatbot_schema.app_user').select('password').where('txemail', '=', email).executeTakeFirstOrThrow();
      assert.match(row.password ?? '', /^\$argon2id\$/);
      assert.equal((await new TestClient(t.app).login(email, 'prototype password')).statusCode, 303);
    }
    // The Google-only account (empty password) cannot sign in with any password.
    assert.equal((await new TestClient(t.app).login('carol@example.com', '')).statusCode, 400);
    assert.equal((await new TestClient(t.app).login('carol@example.com', 'anything at all')).statusCode, 401);
  } finally {
    await t.close();
  }
});
