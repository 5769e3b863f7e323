import { type Kysely, sql } from 'kysely';

/**
 * Stores a prompt and the seed's "🧠 Thinking..." placeholder in ONE round trip, enforcing the per-user limit on
 * answers in flight. It is a function because it needs two snapshots in one statement: the user's row is locked
 * first, and only then (PL/pgSQL takes a fresh snapshot per statement under READ COMMITTED) are the user's active
 * answers counted — so concurrent requests of one user, in any number of processes, cannot both pass the limit.
 * With p_idmessage set (regenerate) only a new response for that prompt is inserted. No row returned = over the limit.
 * This is the time-to-first-token path, hence one call instead of a five-statement transaction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.start_answer(
      p_idappuser integer, p_idchat integer, p_idllm integer, p_prompt text, p_title text,
      p_idmessage integer, p_max_active integer, p_placeholder text
    ) RETURNS TABLE (idmessage integer, idresponse integer)
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      v_active integer;
      v_idmessage integer := p_idmessage;
      v_idresponse integer;
    BEGIN
      PERFORM 1 FROM chatbot_schema.app_user u WHERE u.idappuser = p_idappuser FOR UPDATE;
      SELECT count(*) INTO v_active
        FROM chatbot_schema.response r JOIN chatbot_schema.chat c ON c.idchat = r.idchat
        WHERE c.idappuser = p_idappuser AND r.txstatus IN ('pending', 'streaming');
      IF v_active >= p_max_active THEN
        RETURN;
      END IF;
      IF v_idmessage IS NULL THEN
        INSERT INTO chatbot_schema.message AS m (idchat, txmessage) VALUES (p_idchat, p_prompt) RETURNING m.idmessage INTO v_idmessage;
        UPDATE chatbot_schema.chat c SET txtitle = coalesce(c.txtitle, p_title), dtupdated = now() WHERE c.idchat = p_idchat;
      ELSE
        UPDATE chatbot_schema.chat c SET dtupdated = now() WHERE c.idchat = p_idchat;
      END IF;
      INSERT INTO chatbot_schema.response AS r (idchat, idmessage, idllm, txcontent, txmarkdown, tinf_start, dtheartbeat, txstatus)
        VALUES (p_idchat, v_idmessage, p_idllm, p_placeholder, p_placeholder, now(), now(), 'pending')
        RETURNING r.idresponse INTO v_idresponse;
      idmessage := v_idmessage;
      idresponse := v_idresponse;
      RETURN NEXT;
    END
    $fn$;
  `.execute(db);
}
