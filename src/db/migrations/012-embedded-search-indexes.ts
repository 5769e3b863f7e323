import type { Kysely } from 'kysely';
import { createSearchIndexes } from './010-admin-users.ts';

/**
 * The user list's trigram search indexes for embedded databases that ran 010 before PGlite loaded pg_trgm
 * (embeddedOptions): there 010 skipped them and every `?q=` search scanned the table (170–210 ms at 100,000 users).
 * A no-op where they exist.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await createSearchIndexes(db);
}
