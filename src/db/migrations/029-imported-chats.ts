import { type Kysely, sql } from 'kysely';

/**
 * Chats imported from a file (Settings → Import: our own export or ChatGPT's conversations.json) are marked, and
 * their rows are not model usage: nobody asked a model here for them. Two gates change, nothing else of the counting:
 * - usage_counts(idchat), which every rollup fold (message and response, 011/019) already asks before it counts a
 *   chat's row, now also says no for an imported chat;
 * - count_prompt (010, app_user.nprompts, the admin list's "prompts" column) skips imported chats.
 * The limits (020's usage_counter) need no change: an imported answer has no reservation (dusage_day NULL) and is
 * never updated from pending, so neither admit_prompt nor the settling trigger sees it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.chat ADD COLUMN is_imported BOOLEAN NOT NULL DEFAULT FALSE;

    CREATE OR REPLACE FUNCTION chatbot_schema.usage_counts(p_idchat INTEGER) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
      SELECT (s.nbackfill_cursor IS NULL OR p_idchat <= s.nbackfill_cursor OR p_idchat > s.nbackfill_upto)
        AND NOT EXISTS (SELECT 1 FROM chatbot_schema.chat c WHERE c.idchat = p_idchat AND c.is_imported)
      FROM chatbot_schema.usage_rollup_state s
    $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.count_prompt() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE chatbot_schema.app_user SET nprompts = nprompts + 1
        WHERE idappuser = (SELECT idappuser FROM chatbot_schema.chat WHERE idchat = NEW.idchat AND NOT is_imported);
      RETURN NULL;
    END $$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.usage_counts(p_idchat INTEGER) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
      SELECT s.nbackfill_cursor IS NULL OR p_idchat <= s.nbackfill_cursor OR p_idchat > s.nbackfill_upto FROM chatbot_schema.usage_rollup_state s
    $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.count_prompt() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE chatbot_schema.app_user SET nprompts = nprompts + 1
        WHERE idappuser = (SELECT idappuser FROM chatbot_schema.chat WHERE idchat = NEW.idchat);
      RETURN NULL;
    END $$;

    ALTER TABLE chatbot_schema.chat DROP COLUMN is_imported;
  `.execute(db);
}
