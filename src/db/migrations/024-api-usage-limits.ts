import { type Kysely, sql } from 'kysely';

/**
 * The OpenAI-compatible API under the usage limits (docs/decisions/015 and 016): an API call holds a reservation
 * (admit_prompt's, taken in the call's admission statement) as a chat answer does, recorded on its api_call row, and a
 * trigger settles it with the real tokens when the call leaves 'running' — whichever path wrote that end (the relay,
 * or the sweep after a crash). The counters (usage_counter) are only moved by admit_prompt and settle_usage; 019's
 * rollup trigger counts the same call in the statistics, a separate table, so nothing is counted twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- NULL: no reservation (calls from before this migration).
    ALTER TABLE chatbot_schema.api_call ADD COLUMN nreserved_tokens INTEGER, ADD COLUMN dusage_day DATE;

    -- As 020's usage_settle for answers: the tokens the upstream reported (or the relay estimated); a failed call
    -- ('error', 'interrupted') gives its prompt back; a caller gone ('client_gone') is counted like a stopped answer.
    CREATE FUNCTION chatbot_schema.api_call_settle_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
      v_failed BOOLEAN := NEW.txstatus IN ('error', 'interrupted');
    BEGIN
      IF NEW.dusage_day IS NULL OR OLD.txstatus <> 'running' OR NEW.txstatus = 'running' THEN RETURN NULL; END IF;
      PERFORM chatbot_schema.settle_usage(NEW.idappuser, NEW.dusage_day, NEW.nreserved_tokens,
        coalesce(NEW.nprompt_tokens, CASE WHEN v_failed THEN 0 ELSE NEW.nreserved_tokens END) + coalesce(NEW.ncompletion_tokens, 0), v_failed);
      RETURN NULL;
    END $$;
    CREATE TRIGGER api_call_settle AFTER UPDATE OF txstatus ON chatbot_schema.api_call
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.api_call_settle_trigger();
  `.execute(db);
}
