import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { createUser } from '../users/user-queries.ts';
import { issueChallenge, takeChallenge } from './passkey-challenges.ts';
import { addPasskey, PASSKEYS_PER_ACCOUNT, recordPasskeyUse } from './passkey-queries.ts';

/**
 * The passkey decisions made in one statement, hit at once. PGlite has one connection and serializes everything:
 * these prove something only on PostgreSQL (TEST_DATABASE_URL), where each call gets its own connection.
 */
let database: OpenedDatabase;
let userId = 0;
before(async () => {
  database = await openTestDatabase();
  userId = (await createUser(database.db, { username: 'Race', email: 'race@example.com', passwordHash: null })).id;
});
after(() => database.close());

const key = (i: number) => ({
  credentialId: `cred-${i}`,
  publicKey: 'pk',
  counter: 0,
  transports: [],
  name: `Key ${i}`,
  backupEligible: false,
  backedUp: false,
});

test('20 takes of one challenge at once: exactly one gets it', async () => {
  await issueChallenge(database.db, 's:race', 'sign-in', 'only-once', userId);
  const taken = await Promise.all(Array.from({ length: 20 }, () => takeChallenge(database.db, 's:race', 'sign-in')));
  assert.equal(taken.filter(Boolean).length, 1);
});

test(`20 registrations at once on an account with ${PASSKEYS_PER_ACCOUNT - 1} passkeys: one is added, the rest hit the limit`, async () => {
  for (let i = 0; i < PASSKEYS_PER_ACCOUNT - 1; i++) assert.equal(await addPasskey(database.db, userId, key(i)), 'added');
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => addPasskey(database.db, userId, key(100 + i))));
  assert.deepEqual(
    outcomes.filter((o) => o === 'added'),
    ['added'],
  );
  assert.equal(outcomes.filter((o) => o === 'limit').length, 19);
});

test('20 assertions at once with the same counter: the counter moves once, the other 19 are refused', async () => {
  const row = await database.db.selectFrom('chatbot_schema.passkey').select('idpasskey').where('txcredential_id', '=', 'cred-0').executeTakeFirstOrThrow();
  const results = await Promise.all(Array.from({ length: 20 }, () => recordPasskeyUse(database.db, row.idpasskey, 7, false)));
  assert.equal(results.filter(Boolean).length, 1);
});
