import { type Kysely, sql } from 'kysely';

/**
 * When the person behind a session last proved who they are (a complete sign-in, or the "confirm it's you" form):
 * what a step-up checks before enrolling 2FA and, later, creating API keys or passkeys (decision record 011).
 * NULL for sessions made before this migration: they are asked to confirm, never let through.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE chatbot_schema.session ADD COLUMN IF NOT EXISTS dtlast_proof TIMESTAMPTZ`.execute(db);
}
