import { type Kysely, sql } from 'kysely';

/**
 * Chats imported from a file (Settings → Import: our own export or ChatGPT's conversations.json). The chat is marked
 * for the list's badge; its imported prompts and answers are marked too, and those rows are not model usage: nobody
 * asked a model here for them. What is said in the chat after the import is usage like any other, so the mark is
 * on the rows, not the chat.
 *
 * The counting itself is not changed: the three triggers that count a message or a response (011's usage_message
 * and usage_response, 010's message_count_prompt) are made again exactly as they were, with a WHEN clause that
 * skips imported rows, so their functions (and whoever rewrites them) are untouched. The limits (020's
 * usage_counter) need nothing: an imported answer has no reservation (dusage_day NULL) and never leaves pending.
 * A row's mark never changes, so an UPDATE of an imported row (never counted) is skipped whole too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.chat ADD COLUMN is_imported BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE chatbot_schema.message ADD COLUMN is_imported BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE chatbot_schema.response ADD COLUMN is_imported BOOLEAN NOT NULL DEFAULT FALSE;

    DROP TRIGGER usage_message ON chatbot_schema.message;
    CREATE TRIGGER usage_message AFTER INSERT OR UPDATE OF idchat, dtcreated ON chatbot_schema.message
      FOR EACH ROW WHEN (NOT NEW.is_imported) EXECUTE FUNCTION chatbot_schema.usage_message_trigger();
    DROP TRIGGER usage_response ON chatbot_schema.response;
    CREATE TRIGGER usage_response AFTER INSERT OR UPDATE OF txstatus, idchat, idmessage, idllm, tinf_start, tinf_end, tfirst_token, nprompt_tokens, ncompletion_tokens
      ON chatbot_schema.response
      FOR EACH ROW WHEN (NOT NEW.is_imported) EXECUTE FUNCTION chatbot_schema.usage_response_trigger();
    DROP TRIGGER message_count_prompt ON chatbot_schema.message;
    CREATE TRIGGER message_count_prompt AFTER INSERT ON chatbot_schema.message
      FOR EACH ROW WHEN (NOT NEW.is_imported) EXECUTE FUNCTION chatbot_schema.count_prompt();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TRIGGER usage_message ON chatbot_schema.message;
    CREATE TRIGGER usage_message AFTER INSERT OR UPDATE OF idchat, dtcreated ON chatbot_schema.message
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_message_trigger();
    DROP TRIGGER usage_response ON chatbot_schema.response;
    CREATE TRIGGER usage_response AFTER INSERT OR UPDATE OF txstatus, idchat, idmessage, idllm, tinf_start, tinf_end, tfirst_token, nprompt_tokens, ncompletion_tokens
      ON chatbot_schema.response
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_response_trigger();
    DROP TRIGGER message_count_prompt ON chatbot_schema.message;
    CREATE TRIGGER message_count_prompt AFTER INSERT ON chatbot_schema.message
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.count_prompt();
    ALTER TABLE chatbot_schema.response DROP COLUMN is_imported;
    ALTER TABLE chatbot_schema.message DROP COLUMN is_imported;
    ALTER TABLE chatbot_schema.chat DROP COLUMN is_imported;
  `.execute(db);
}
