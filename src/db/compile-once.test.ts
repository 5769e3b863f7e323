import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import { compileOnce } from './compile-once.ts';
import type { OpenedDatabase } from './database.ts';

let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

test('each call binds its own arguments into the query compiled at the first call; constants stay', async () => {
  const roleNamed = compileOnce((db, id: number, prefix: string) =>
    db
      .selectFrom('chatbot_schema.role')
      .select(['idrole', 'txname'])
      .where('idrole', '=', id)
      .where('txname', 'like', sql<string>`${prefix} || '%'`)
      .where('idrole', '<', 100),
  );
  assert.deepEqual(await roleNamed(database.db, 1, 'Ad'), [{ idrole: 1, txname: 'Admin' }]);
  assert.deepEqual(await roleNamed(database.db, 2, 'Us'), [{ idrole: 2, txname: 'User' }]);
  assert.deepEqual(await roleNamed(database.db, 2, 'Ad'), []);
});

test('an argument that is not a bound value (in the SQL text, or transformed) is refused', async () => {
  const inText = compileOnce((db, column: string) => db.selectFrom('chatbot_schema.role').select(sql.ref(column).as('x')));
  await assert.rejects(inText(database.db, 'txname'), /every argument must be used as a bound value/);
  const transformed = compileOnce((db, name: string) => db.selectFrom('chatbot_schema.role').select('idrole').where('txname', '=', name.toUpperCase()));
  await assert.rejects(transformed(database.db, 'admin'), /every argument must be used as a bound value/);
});
