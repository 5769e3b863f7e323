import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { issueChallenge, takeChallenge } from './passkey-challenges.ts';

/** The challenge store on its own (both databases): single use, bound to the browser and the purpose, expiring. */
let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

test('a challenge is taken once, by its own binding and purpose only', async () => {
  const { db } = database;
  await issueChallenge(db, 'a:one', 'sign-in', 'challenge-1', null);
  assert.equal(await takeChallenge(db, 'a:other', 'sign-in'), undefined, 'another browser');
  assert.equal(await takeChallenge(db, 'a:one', 'step-up'), undefined, 'another purpose');
  assert.deepEqual(await takeChallenge(db, 'a:one', 'sign-in'), { challenge: 'challenge-1', userId: null });
  assert.equal(await takeChallenge(db, 'a:one', 'sign-in'), undefined, 'used');
});

test('a new one replaces the earlier one of the same browser and purpose', async () => {
  const { db } = database;
  await issueChallenge(db, 'a:two', 'sign-in', 'old', null);
  await issueChallenge(db, 'a:two', 'sign-in', 'new', null);
  assert.equal((await takeChallenge(db, 'a:two', 'sign-in'))?.challenge, 'new');
  assert.equal(await takeChallenge(db, 'a:two', 'sign-in'), undefined);
});

test('an expired challenge is not given, and is gone; expired ones are cleared when another is issued', async () => {
  const { db } = database;
  await issueChallenge(db, 'a:three', 'sign-in', 'late', null);
  await sql`UPDATE chatbot_schema.webauthn_challenge SET dtexpires = now() - interval '1 second' WHERE txbinding = 'a:three'`.execute(db);
  assert.equal(await takeChallenge(db, 'a:three', 'sign-in'), undefined);
  await issueChallenge(db, 'a:four', 'sign-in', 'left', null);
  await sql`UPDATE chatbot_schema.webauthn_challenge SET dtexpires = now() - interval '1 second' WHERE txbinding = 'a:four'`.execute(db);
  await issueChallenge(db, 'a:five', 'sign-in', 'fresh', null);
  const left = await db.selectFrom('chatbot_schema.webauthn_challenge').select('txbinding').execute();
  assert.deepEqual(
    left.map((r) => r.txbinding),
    ['a:five'],
  );
  const expiresIn = await sql<{ s: number }>`SELECT extract(epoch FROM dtexpires - now())::int AS s FROM chatbot_schema.webauthn_challenge`.execute(db);
  assert.ok(Math.abs(Number(expiresIn.rows[0]?.s) - 300) <= 2, 'five minutes');
});
