import { type Kysely, sql } from 'kysely';

/**
 * Progress of the catch-up jobs counted in rows (src/db/catch-up.ts): what /admin/stats and the log show while the
 * server re-renders an adopted database's answers after start. Nothing heavy here: the total is counted by the job
 * itself, after the server listens (on a million adopted answers, counting alone takes a moment).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS chatbot_schema.catch_up (
      txjob TEXT PRIMARY KEY,
      -- NULL until a process begins the job and counts what is left.
      ntotal BIGINT,
      ndone BIGINT NOT NULL DEFAULT 0
    );
    INSERT INTO chatbot_schema.catch_up (txjob) VALUES ('adopted-answers') ON CONFLICT DO NOTHING;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS chatbot_schema.catch_up`.execute(db);
}
