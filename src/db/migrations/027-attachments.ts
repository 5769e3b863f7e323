import { type Kysely, sql } from 'kysely';

/**
 * Files and images sent with a prompt (issue 21; docs/decisions/021-attachments.md). Their bytes live in the database
 * beside their message (`bytea`: PGlite holds it too, a backup holds it, and a deleted chat takes them with it through
 * the message's ON DELETE CASCADE). `nbytes` is what the per-user storage figure adds up; `nchars` is what a text
 * file weighs against MAX_HISTORY_CHARS, known without reading the bytes. `llm.vision`: the admin's mark on models
 * that take images.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE chatbot_schema.llm ADD COLUMN IF NOT EXISTS vision boolean NOT NULL DEFAULT false`.execute(db);
  await sql`
    CREATE TABLE chatbot_schema.attachment (
      idattachment SERIAL PRIMARY KEY,
      idmessage integer NOT NULL REFERENCES chatbot_schema.message(idmessage) ON DELETE CASCADE,
      txname text NOT NULL,
      txkind text NOT NULL CHECK (txkind IN ('text', 'image')),
      txmedia_type text NOT NULL,
      nbytes integer NOT NULL,
      nchars integer NOT NULL,
      bcontent bytea NOT NULL,
      dtcreated timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX attachment_message ON chatbot_schema.attachment (idmessage)`.execute(db);
}
