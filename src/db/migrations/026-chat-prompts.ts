import { type Kysely, sql } from 'kysely';

/**
 * System prompts and edit-and-resend (issue 21; docs/decisions/020-system-prompts-and-edit.md).
 *
 * - `llm.system_prompt` (the admin's, sent first) and `chat.system_prompt` (the chat owner's, sent after it); NULL:
 *   none. Their lengths are bounded by the forms and the API, not here.
 * - `edit_prompt` replaces a sent prompt: under the chat's lock it refuses while an answer is in flight (`busy`),
 *   finds the message in the chat (`message_not_found`), deletes it and every later message (their answers go with
 *   them: ON DELETE CASCADE) and sends the new text through begin_answer (023), which inserts it as the chat's newest
 *   prompt with its placeholder answer. When begin_answer refuses (limit, access, model), the block's savepoint is
 *   rolled back: a refused edit deletes nothing. Deleted rows are not subtracted from the usage rollups (011).
 *   Its row is begin_answer's, so the caller reads both alike.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE chatbot_schema.llm ADD COLUMN system_prompt TEXT`.execute(db);
  await sql`ALTER TABLE chatbot_schema.chat ADD COLUMN system_prompt TEXT`.execute(db);
  await sql`
    CREATE FUNCTION chatbot_schema.edit_prompt(
      p_idappuser integer, p_idchat integer, p_idmessage integer, p_prompt text, p_title text, p_max_active integer, p_placeholder text, p_owner integer
    ) RETURNS TABLE (
      outcome text, idmessage integer, idresponse integer, prompt text, history json,
      idllm integer, txshortname text, txbase_url text, txapi_key_enc text, txmodel text, is_enabled boolean,
      limit_name text, limit_value bigint, resets_at timestamptz, prompts_left bigint, tokens_left_day bigint, tokens_left_month bigint
    )
    LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      -- The same lock begin_answer takes first, so an edit and a prompt (or two edits) arriving together are decided one
      -- after the other: the second sees the first one's answer in flight.
      PERFORM 1 FROM chatbot_schema.chat c WHERE c.idchat = p_idchat AND c.idappuser = p_idappuser FOR UPDATE;
      IF NOT FOUND THEN
        outcome := 'not_found'; RETURN NEXT; RETURN;
      END IF;
      IF EXISTS (SELECT 1 FROM chatbot_schema.response r WHERE r.idchat = p_idchat AND r.txstatus IN ('pending', 'streaming')) THEN
        outcome := 'busy'; RETURN NEXT; RETURN;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM chatbot_schema.message m WHERE m.idchat = p_idchat AND m.idmessage = p_idmessage) THEN
        outcome := 'message_not_found'; RETURN NEXT; RETURN;
      END IF;
      BEGIN
        DELETE FROM chatbot_schema.message m WHERE m.idchat = p_idchat AND m.idmessage >= p_idmessage;
        SELECT b.* INTO outcome, idmessage, idresponse, prompt, history, idllm, txshortname, txbase_url, txapi_key_enc, txmodel, is_enabled,
                        limit_name, limit_value, resets_at, prompts_left, tokens_left_day, tokens_left_month
          FROM chatbot_schema.begin_answer(p_idappuser, p_idchat, p_prompt, p_title, p_max_active, p_placeholder, p_owner, NULL) b;
        IF outcome <> 'ok' THEN
          RAISE EXCEPTION 'edit refused' USING ERRCODE = 'PE021';
        END IF;
      EXCEPTION WHEN SQLSTATE 'PE021' THEN
        NULL; -- the deletes are undone; the output columns keep begin_answer's refusal
      END;
      RETURN NEXT;
    END
    $fn$;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION chatbot_schema.edit_prompt(integer, integer, integer, text, text, integer, text, integer)`.execute(db);
  await sql`ALTER TABLE chatbot_schema.chat DROP COLUMN system_prompt`.execute(db);
  await sql`ALTER TABLE chatbot_schema.llm DROP COLUMN system_prompt`.execute(db);
}
