import { type Kysely, sql } from 'kysely';

/**
 * One lock order for a user's usage rows: the limit counters (usage_counter) before the statistics rollups.
 * begin_answer takes them in that order (admit_prompt, then the message's and the response's rollup triggers); an
 * answer's final UPDATE took them the other way round, because PostgreSQL fires a table's AFTER triggers in the
 * order of their names and 011's `usage_response` comes before 020's `usage_settle`. Two answers of one user, one
 * starting and one ending, then deadlocked on PostgreSQL (test/model-faults.test.ts and
 * src/stats/rollup-concurrency.test.ts found it once 019 and 020 met). Renamed so that the settling fires first.
 * (The API's `api_call_settle` already sorts before `usage_api_call`.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TRIGGER usage_settle ON chatbot_schema.response RENAME TO usage_limits_settle`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TRIGGER usage_limits_settle ON chatbot_schema.response RENAME TO usage_settle`.execute(db);
}
