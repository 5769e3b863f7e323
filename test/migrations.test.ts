import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { type OpenedDatabase, openDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import * as foundation from '../src/db/migrations/001-foundation.ts';
import { openTestDatabase, testDbKind } from './database.ts';

async function tableNames(database: OpenedDatabase): Promise<string[]> {
  const r = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'chatbot_schema' ORDER BY table_name`.execute(database.db);
  return r.rows.map((x) => x.table_name);
}

test('on a fresh database: every migration runs once, a second run does nothing, and the roles exist', async () => {
  const database = await openTestDatabase({ migrate: false });
  try {
    const applied = await migrateToLatest(database.db);
    assert.equal(applied[0], '001-foundation');
    assert.deepEqual(await migrateToLatest(database.db), []);
    for (const table of ['app_user', 'role', 'user_role', 'llm', 'chat', 'message', 'response', 'session', 'login_throttle']) {
      assert.ok((await tableNames(database)).includes(table), table);
    }
    const roles = await database.db.selectFrom('chatbot_schema.role').select(['idrole', 'txname']).orderBy('idrole').execute();
    assert.deepEqual(roles, [
      { idrole: 1, txname: 'Admin' },
      { idrole: 2, txname: 'User' },
    ]);
  } finally {
    await database.close();
  }
});

test('the foundation SQL itself is idempotent (what adopting a half-migrated database relies on)', async () => {
  const database = await openTestDatabase();
  try {
    const before = await tableNames(database);
    // Run again without Kysely's bookkeeping: every CREATE and ALTER must tolerate what exists.
    await foundation.up(database.db as unknown as Kysely<unknown>);
    assert.deepEqual(await tableNames(database), before);
    const roles = await database.db.selectFrom('chatbot_schema.role').select('idrole').execute();
    assert.equal(roles.length, 2);
  } finally {
    await database.close();
  }
});

test('two migrations started at once on one connection pool both succeed', async () => {
  const database = await openTestDatabase({ migrate: false });
  try {
    const [a, b] = await Promise.all([migrateToLatest(database.db), migrateToLatest(database.db)]);
    // One of them did the work; the other found it done. Nothing ran twice.
    assert.deepEqual([...a, ...b].sort(), [...new Set([...a, ...b])].sort());
    assert.ok(a.length === 0 || b.length === 0);
  } finally {
    await database.close();
  }
});

test('two app processes migrating one PostgreSQL database at once both succeed', { skip: testDbKind !== 'postgres' && 'PostgreSQL only' }, async () => {
  const url = process.env.TEST_DATABASE_URL as string;
  const name = `parley_migrate_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  // Separate pools stand for separate processes: each has its own connections, so only the database serialises them.
  const first = await openDatabase({ databaseUrl: dbUrl.toString() });
  const second = await openDatabase({ databaseUrl: dbUrl.toString() });
  try {
    const results = await Promise.all([migrateToLatest(first.db), migrateToLatest(second.db), migrateToLatest(first.db)]);
    const applied = results.flat();
    assert.equal(applied.length, new Set(applied).size, `a migration ran twice: ${applied.join()}`);
    assert.ok(applied.includes('001-foundation'));
    assert.deepEqual(await migrateToLatest(second.db), []);
  } finally {
    await first.close();
    await second.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
});
