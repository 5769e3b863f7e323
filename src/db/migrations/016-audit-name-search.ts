import { type Kysely, sql } from 'kysely';

/**
 * The audit log's filters take a name or e-mail address (src/admin/audit-routes.ts) and first look for an account
 * with exactly that name, ignoring case. E-mail has its lower() index since 001; this is the username's, so the
 * lookup is an index probe rather than a scan of every account (a trigram LIKE over common words like "name" reads
 * most of the table: ~160 ms at 100,000 accounts on PostgreSQL). Not unique: the seed never made usernames unique.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS app_user_username_lower_idx ON chatbot_schema.app_user (lower(txusername))`.execute(db);
}
