import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { totpCodeAt } from '../src/auth/totp.ts';
import { totpSecretBox } from '../src/auth/totp-queries.ts';
import type { OpenedDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { startTestApp, type TestApp } from './app.ts';
import { TestClient } from './client.ts';
import { openTestDatabase } from './database.ts';

/**
 * A Flask-prototype database where a user turned 2FA on the prototype's way (the feature note's ALTER, a plaintext
 * pyotp base32 secret): after adoption the secret is stored sealed, and the user signs in with the authenticator
 * they already have.
 */
const fixture = readFileSync(path.join(import.meta.dirname, 'fixtures/flask-prototype.sql'), 'utf8');
// pyotp.random_base32() makes 32 characters; older versions made 16 (the note's VARCHAR(32) holds either).
const ALICE_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const BOB_ABANDONED = 'KRUGKIDROVUWG2ZA';

let database: OpenedDatabase;
let t: TestApp;

before(async () => {
  database = await openTestDatabase({ migrate: false });
  await sql.raw(fixture).execute(database.db);
  // The feature note's schema change and what the prototype's /settings/2fa wrote.
  await sql`ALTER TABLE chatbot_schema.app_user ADD COLUMN totp_secret VARCHAR(32), ADD COLUMN is_2fa_enabled BOOLEAN DEFAULT FALSE`.execute(database.db);
  await sql`UPDATE chatbot_schema.app_user SET totp_secret = ${ALICE_SECRET}, is_2fa_enabled = TRUE WHERE txemail = 'alice@example.com'`.execute(database.db);
  // Bob clicked "generate" and never confirmed: a plaintext secret with 2FA off.
  await sql`UPDATE chatbot_schema.app_user SET totp_secret = ${BOB_ABANDONED} WHERE txemail = 'bob@example.com'`.execute(database.db);
  await migrateToLatest(database.db);
  t = await startTestApp({}, database);
});
after(async () => {
  await t.close();
  await database.close();
});

const secretOf = async (email: string) =>
  await database.db.selectFrom('chatbot_schema.app_user').select(['totp_secret', 'is_2fa_enabled']).where('txemail', '=', email).executeTakeFirstOrThrow();

test('adopted plaintext secrets are stored sealed once the app has started', async () => {
  const alice = await secretOf('alice@example.com');
  assert.equal(alice.is_2fa_enabled, true);
  assert.match(alice.totp_secret ?? '', /^v1\./);
  assert.ok(!alice.totp_secret?.includes(ALICE_SECRET));
  assert.equal(totpSecretBox(t.config.APP_SECRET).decrypt(alice.totp_secret ?? ''), ALICE_SECRET);
  const bob = await secretOf('bob@example.com');
  assert.match(bob.totp_secret ?? '', /^v1\./);
  const plaintextLeft = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.app_user WHERE totp_secret NOT LIKE 'v1.%'`.execute(database.db);
  assert.equal(plaintextLeft.rows[0]?.n, 0);
});

test('the adopted user signs in with their prototype password and the authenticator they already have', async () => {
  const c = new TestClient(t.app);
  const first = await c.login('alice@example.com', 'prototype password');
  assert.equal(first.headers.location, '/login/2fa');
  await c.get('/login/2fa');
  const res = await c.post('/login/2fa', { otp_code: totpCodeAt(ALICE_SECRET, Date.now()) });
  assert.equal(res.statusCode, 303, res.body);
  assert.equal(res.headers.location, '/chat');
  assert.equal((await c.get('/chat')).statusCode, 200);
});

test('a user whose prototype enrolment was never confirmed signs in with the password alone', async () => {
  const c = new TestClient(t.app);
  assert.equal((await c.login('bob@example.com', 'prototype password')).headers.location, '/chat');
});
