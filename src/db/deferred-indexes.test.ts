import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import { type Db, openDatabase, serverUrlOf } from './database.ts';
import { DEFERRED_INDEXES, deferredIndexesJob } from './deferred-indexes.ts';

const present = async (db: Db) =>
  (
    await sql<{
      indexname: string;
    }>`SELECT indexname FROM pg_indexes WHERE schemaname = 'chatbot_schema' AND indexname = ANY(${DEFERRED_INDEXES.map((ix) => ix.name)})`.execute(db)
  ).rows
    .map((r) => r.indexname)
    .sort();

/** As the migrations leave a database (test databases get the indexes from their template). */
async function withoutDeferredIndexes(db: Db): Promise<void> {
  for (const ix of DEFERRED_INDEXES) await sql`DROP INDEX chatbot_schema.${sql.raw(ix.name)}`.execute(db);
}

test('the job builds the indexes the migrations leave to it (test/prototype-adoption.test.ts), one per step', async () => {
  const database = await openTestDatabase();
  try {
    await withoutDeferredIndexes(database.db);
    assert.deepEqual(await present(database.db), []);
    const job = deferredIndexesJob();
    assert.equal(await job.percent(database.db), 0);
    assert.equal(await job.step(database.db), true);
    assert.equal((await present(database.db)).length, 1);
    while (await job.step(database.db)) {}
    assert.deepEqual(await present(database.db), DEFERRED_INDEXES.map((ix) => ix.name).sort());
    assert.equal(await job.percent(database.db), null);

    // An index a process left invalid (it died during a concurrent build) is dropped and built again.
    await sql`UPDATE pg_index SET indisvalid = FALSE WHERE indexrelid = 'chatbot_schema.response_chat_idx'::regclass`.execute(database.db);
    assert.equal(await job.step(database.db), true);
    const valid = await sql<{ indisvalid: boolean }>`SELECT indisvalid FROM pg_index WHERE indexrelid = 'chatbot_schema.response_chat_idx'::regclass`.execute(
      database.db,
    );
    assert.deepEqual(valid.rows, [{ indisvalid: true }]);
    assert.equal(await job.step(database.db), false);
  } finally {
    await database.close();
  }
});

test('on PostgreSQL, one process builds while another finds the lock taken and leaves it (bites only on PostgreSQL)', async (t) => {
  const database = await openTestDatabase();
  const url = serverUrlOf(database.db);
  if (!url) {
    await database.close();
    return t.skip('PGlite has one connection');
  }
  const { rows } = await sql<{ name: string }>`SELECT current_database() AS name`.execute(database.db);
  const other = new URL(url);
  other.pathname = `/${rows[0]?.name}`;
  const second = await openDatabase({ databaseUrl: other.toString() });
  try {
    await withoutDeferredIndexes(database.db);
    // The other process holds the lock (it is building): this one's step does nothing and says so.
    await sql`SELECT pg_advisory_lock(hashtext('parley deferred indexes'))`.execute(second.db);
    assert.equal(await deferredIndexesJob().step(database.db), false);
    assert.deepEqual(await present(database.db), []);
  } finally {
    await second.close();
    await database.close();
  }
});
