import { type Kysely, sql } from 'kysely';

/**
 * User management (issue 8, docs/decisions/005-admin-user-list.md):
 * - `admin_audit`: one row per admin action, written in the action's transaction; never deleted by the app.
 *   Actor and target keep a name snapshot, so a row still reads right after a rename.
 * - `password_reset`: one-time reset links, stored as SHA-256 like sessions (a leaked table resets nobody's password).
 * - `app_user.nprompts`: prompts sent, counted by a trigger on message, so "sort by prompts" is an index walk instead
 *   of counting every message of every user (1M messages: hundreds of ms). It counts prompts sent: deleting a chat
 *   does not lower it.
 * - Indexes for the list at 100,000 users: one btree per sort order (the page is an index walk of 50 + offset
 *   entries), each INCLUDE-ing the two filter flags so a filtered deep page is an index-only scan, not 100,000 heap
 *   visits; and trigram GIN indexes for `?q=` substring search where pg_trgm is available.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS chatbot_schema.admin_audit (
      idaudit BIGSERIAL PRIMARY KEY,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      idactor INTEGER REFERENCES chatbot_schema.app_user(idappuser) ON DELETE SET NULL,
      txactor TEXT NOT NULL,
      idtarget INTEGER REFERENCES chatbot_schema.app_user(idappuser) ON DELETE SET NULL,
      txtarget TEXT,
      txaction TEXT NOT NULL,
      jsdetails JSONB NOT NULL DEFAULT '{}'::jsonb,
      txip TEXT
    );
    CREATE INDEX IF NOT EXISTS admin_audit_actor_idx ON chatbot_schema.admin_audit (idactor, idaudit DESC);
    CREATE INDEX IF NOT EXISTS admin_audit_target_idx ON chatbot_schema.admin_audit (idtarget, idaudit DESC);
    CREATE INDEX IF NOT EXISTS admin_audit_action_idx ON chatbot_schema.admin_audit (txaction, idaudit DESC);

    CREATE TABLE IF NOT EXISTS chatbot_schema.password_reset (
      idtoken CHAR(64) PRIMARY KEY,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user(idappuser) ON DELETE CASCADE,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      dtexpires TIMESTAMPTZ NOT NULL,
      dtused TIMESTAMPTZ
    );
    CREATE INDEX IF NOT EXISTS password_reset_user_idx ON chatbot_schema.password_reset (idappuser);

    ALTER TABLE chatbot_schema.app_user ADD COLUMN IF NOT EXISTS nprompts INTEGER NOT NULL DEFAULT 0;
    UPDATE chatbot_schema.app_user u SET nprompts = c.n
      FROM (SELECT ch.idappuser, count(*)::int AS n FROM chatbot_schema.message m JOIN chatbot_schema.chat ch ON ch.idchat = m.idchat GROUP BY ch.idappuser) c
      WHERE c.idappuser = u.idappuser;

  `.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.count_prompt() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE chatbot_schema.app_user SET nprompts = nprompts + 1
        WHERE idappuser = (SELECT idappuser FROM chatbot_schema.chat WHERE idchat = NEW.idchat);
      RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS message_count_prompt ON chatbot_schema.message;
    CREATE TRIGGER message_count_prompt AFTER INSERT ON chatbot_schema.message
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.count_prompt();

    CREATE INDEX IF NOT EXISTS app_user_username_idx ON chatbot_schema.app_user (txusername, idappuser) INCLUDE (is_active, is_2fa_enabled);
    CREATE INDEX IF NOT EXISTS app_user_created_idx ON chatbot_schema.app_user (dtcreated DESC, idappuser DESC) INCLUDE (is_active, is_2fa_enabled);
    CREATE INDEX IF NOT EXISTS app_user_last_login_idx ON chatbot_schema.app_user (dtlast_login DESC NULLS LAST, idappuser DESC) INCLUDE (is_active, is_2fa_enabled);
    CREATE INDEX IF NOT EXISTS app_user_prompts_idx ON chatbot_schema.app_user (nprompts DESC, idappuser DESC) INCLUDE (is_active, is_2fa_enabled);
    CREATE INDEX IF NOT EXISTS app_user_deactivated_idx ON chatbot_schema.app_user (txusername, idappuser) WHERE NOT is_active;
    CREATE INDEX IF NOT EXISTS user_role_role_idx ON chatbot_schema.user_role (idrole, idappuser);
  `.execute(db);
  await createSearchIndexes(db);
}

/**
 * Trigram GIN indexes for `?q=` substring search. pg_trgm ships with PostgreSQL (contrib, "trusted" since 13: a
 * database owner may create it); embedded PGlite has it when its extension bundle is loaded at construction
 * (embeddedOptions in database.ts, since migration 012). Checked, not attempted: a failed CREATE would abort the
 * migration's transaction. Without it the search is a sequential scan.
 */
export async function createSearchIndexes(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') AS ok`.execute(db);
  if (rows[0]?.ok) {
    await sql`
      CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
      CREATE INDEX IF NOT EXISTS app_user_username_trgm_idx ON chatbot_schema.app_user USING gin (lower(txusername) public.gin_trgm_ops);
      CREATE INDEX IF NOT EXISTS app_user_email_trgm_idx ON chatbot_schema.app_user USING gin (lower(txemail) public.gin_trgm_ops);
    `.execute(db);
  }
}
