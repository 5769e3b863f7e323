import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from './database.ts';

// The admin user list's substring search (?q=) needs its trigram indexes on both databases: without pg_trgm loaded
// into PGlite, a search at 100,000 users scanned the table (170–210 ms against a 30 ms target).
let database: OpenedDatabase;
before(async () => {
  database = await openTestDatabase();
});
after(() => database.close());

test('the trigram search indexes exist and the planner can use them for a substring search', async () => {
  const { rows } = await sql<{ indexname: string }>`
    SELECT indexname FROM pg_indexes WHERE schemaname = 'chatbot_schema' AND indexname LIKE 'app_user_%_trgm_idx' ORDER BY indexname`.execute(database.db);
  assert.deepEqual(
    rows.map((r) => r.indexname),
    ['app_user_email_trgm_idx', 'app_user_username_trgm_idx'],
  );
  await sql`SET enable_seqscan = off`.execute(database.db);
  const plan = await sql<{ 'QUERY PLAN': string }>`
    EXPLAIN SELECT idappuser FROM chatbot_schema.app_user WHERE lower(txusername) LIKE '%' || 'ada' || '%'`.execute(database.db);
  await sql`RESET enable_seqscan`.execute(database.db);
  assert.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), /app_user_username_trgm_idx/);
});
