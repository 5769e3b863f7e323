import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { HttpError } from '../http/errors.ts';
import { ADMIN_ROLE_ID, createUser, grantAdmin } from '../users/user-queries.ts';
import { applyUserAction, type UserAction } from './user-actions.ts';

let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

const ROUNDS = 15;

async function twoLoneAdmins(round: number): Promise<[{ id: number; username: string }, { id: number; username: string }]> {
  const db = database.db;
  // Only these two are active admins: everyone else made before is deactivated.
  await sql`UPDATE chatbot_schema.app_user SET is_active = FALSE`.execute(db);
  const a = await createUser(db, { username: `a${round}`, email: `a${round}@example.com`, passwordHash: null });
  const b = await createUser(db, { username: `b${round}`, email: `b${round}@example.com`, passwordHash: null });
  await grantAdmin(db, a.id);
  await grantAdmin(db, b.id);
  return [
    { id: a.id, username: `a${round}` },
    { id: b.id, username: `b${round}` },
  ];
}

const activeAdmins = async () =>
  Number(
    (
      await sql<{
        n: number;
      }>`SELECT count(*) AS n FROM chatbot_schema.app_user u JOIN chatbot_schema.user_role r USING (idappuser) WHERE r.idrole = ${ADMIN_ROLE_ID} AND u.is_active`.execute(
        database.db,
      )
    ).rows[0]?.n,
  );

for (const [first, second] of [
  ['demote', 'demote'],
  ['deactivate', 'deactivate'],
  ['demote', 'deactivate'],
] as [UserAction, UserAction][]) {
  test(`two lone admins ${first} and ${second} each other at the same moment, ${ROUNDS} times: exactly one succeeds, one active admin remains (the race bites only on PostgreSQL)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await twoLoneAdmins(round * 10 + first.length + second.length);
      const results = await Promise.allSettled([
        applyUserAction(database.db, { ...a, ip: null }, first, [b.id]),
        applyUserAction(database.db, { ...b, ip: null }, second, [a.id]),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(ok.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
      const reason = (refused[0] as PromiseRejectedResult).reason;
      assert.ok(reason instanceof HttpError && reason.statusCode === 403, String(reason));
      assert.equal(await activeAdmins(), 1);
    }
  });
}
