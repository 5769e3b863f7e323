import { type Kysely, sql } from 'kysely';

/**
 * Sessions say how they were made and whether they are complete. `txsign_in_method` is the way in
 * (`password`, later `google`); `is_second_factor_pending` marks a session that has passed the first factor only:
 * such a session reaches the second step and sign-out and nothing else, and is made with a short `dtexpires`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.session
      ADD COLUMN IF NOT EXISTS txsign_in_method TEXT NOT NULL DEFAULT 'password',
      ADD COLUMN IF NOT EXISTS is_second_factor_pending BOOLEAN NOT NULL DEFAULT FALSE;
  `.execute(db);
}
