import { type Kysely, sql } from 'kysely';

/**
 * What the streaming path needs to work across several app processes: a heartbeat (so a process can tell a
 * live answer from one whose process died) and a stop flag (so Stop works whichever process runs the answer).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.response
      ADD COLUMN IF NOT EXISTS dtheartbeat TIMESTAMPTZ,
      ADD COLUMN IF NOT EXISTS is_stop_requested BOOLEAN NOT NULL DEFAULT FALSE;
  `.execute(db);
}
