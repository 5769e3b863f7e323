import { type Kysely, sql } from 'kysely';

/**
 * Model health and the admin's default model (docs/decisions/010-model-health-and-default.md).
 *
 * - `is_healthy`: the result of the last check of the connection, null until one was made. A check is the admin's
 *   "Test connection" (GET /models) or a real answer: one that could not even start (server unreachable, refused,
 *   timed out before any text) marks the model failing, a completed one marks it healthy again.
 * - `dthealth_checked` / `txhealth_source` ('test' | 'answer'): when that result was seen and by what. Answers only
 *   write when the result changes (a healthy model's answers never touch this row).
 * - `txlast_error` / `dtlast_error`: the last failure and when, kept after the model recovers.
 * - `is_default`: the model an admin marked as the default, preselected for users who have no usable last-used
 *   model. At most one, by the partial unique index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.llm
      ADD COLUMN IF NOT EXISTS is_healthy BOOLEAN,
      ADD COLUMN IF NOT EXISTS dthealth_checked TIMESTAMPTZ,
      ADD COLUMN IF NOT EXISTS txhealth_source TEXT CHECK (txhealth_source IN ('test', 'answer')),
      ADD COLUMN IF NOT EXISTS txlast_error TEXT,
      ADD COLUMN IF NOT EXISTS dtlast_error TIMESTAMPTZ,
      ADD COLUMN IF NOT EXISTS is_default BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE UNIQUE INDEX IF NOT EXISTS llm_one_default_idx ON chatbot_schema.llm ((true)) WHERE is_default;
  `.execute(db);
}
