import { type Kysely, sql } from 'kysely';

/**
 * Everything that must happen before a model is asked, in ONE round trip (the time-to-first-token path):
 * the chat must be the user's, its model usable, the user under their limit of answers in flight; the
 * conversation so far is read, and the prompt and the seed's "🧠 Thinking..." placeholder (tinf_start = now())
 * are stored. With p_prompt NULL it regenerates: a new answer to the chat's last prompt (refused while one runs).
 *
 * It is a function because it needs two snapshots in one statement: the user's row is locked first, and only
 * then (PL/pgSQL takes a fresh snapshot per statement under READ COMMITTED) are the user's active answers
 * counted, so concurrent requests of one user, in any number of processes, cannot both pass the limit.
 * `outcome` says what happened: ok, not_found, model_unavailable, no_message, busy, limit.
 * Replaces 003's start_answer, whose work it includes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS chatbot_schema.start_answer(integer, integer, integer, text, text, integer, integer, text)`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.begin_answer(
      p_idappuser integer, p_idchat integer, p_prompt text, p_title text, p_max_active integer, p_placeholder text
    ) RETURNS TABLE (
      outcome text, idmessage integer, idresponse integer, prompt text, history json,
      idllm integer, txshortname text, txbase_url text, txapi_key_enc text, txmodel text, is_enabled boolean
    )
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      v_idllm integer;
      v_idmessage integer;
      v_idresponse integer;
      v_prompt text := p_prompt;
      v_active integer;
    BEGIN
      SELECT c.idllm INTO v_idllm FROM chatbot_schema.chat c WHERE c.idchat = p_idchat AND c.idappuser = p_idappuser;
      IF NOT FOUND THEN
        outcome := 'not_found'; RETURN NEXT; RETURN;
      END IF;
      SELECT l.idllm, l.txshortname, l.txbase_url, l.txapi_key_enc, l.txmodel, l.is_enabled
        INTO idllm, txshortname, txbase_url, txapi_key_enc, txmodel, is_enabled
        FROM chatbot_schema.llm l WHERE l.idllm = v_idllm;
      IF NOT is_enabled OR txbase_url IS NULL THEN
        outcome := 'model_unavailable'; RETURN NEXT; RETURN;
      END IF;

      IF p_prompt IS NULL THEN
        SELECT m.idmessage, m.txmessage INTO v_idmessage, v_prompt
          FROM chatbot_schema.message m WHERE m.idchat = p_idchat ORDER BY m.idmessage DESC LIMIT 1;
        IF v_idmessage IS NULL THEN
          outcome := 'no_message'; RETURN NEXT; RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM chatbot_schema.response r WHERE r.idchat = p_idchat AND r.txstatus IN ('pending', 'streaming')) THEN
          outcome := 'busy'; RETURN NEXT; RETURN;
        END IF;
      END IF;

      -- The conversation before this prompt: each earlier prompt with its latest answer.
      SELECT coalesce(json_agg(json_build_object('prompt', m.txmessage, 'answer', r.txmarkdown, 'status', r.txstatus) ORDER BY m.idmessage), '[]'::json)
        INTO history
        FROM chatbot_schema.message m
        LEFT JOIN LATERAL (SELECT x.txmarkdown, x.txstatus FROM chatbot_schema.response x
                           WHERE x.idmessage = m.idmessage ORDER BY x.idresponse DESC LIMIT 1) r ON true
        WHERE m.idchat = p_idchat AND (v_idmessage IS NULL OR m.idmessage < v_idmessage);

      PERFORM 1 FROM chatbot_schema.app_user u WHERE u.idappuser = p_idappuser FOR UPDATE;
      SELECT count(*) INTO v_active
        FROM chatbot_schema.response r JOIN chatbot_schema.chat c ON c.idchat = r.idchat
        WHERE c.idappuser = p_idappuser AND r.txstatus IN ('pending', 'streaming');
      IF v_active >= p_max_active THEN
        outcome := 'limit'; RETURN NEXT; RETURN;
      END IF;

      IF v_idmessage IS NULL THEN
        INSERT INTO chatbot_schema.message AS m (idchat, txmessage) VALUES (p_idchat, p_prompt) RETURNING m.idmessage INTO v_idmessage;
        UPDATE chatbot_schema.chat c SET txtitle = coalesce(c.txtitle, p_title), dtupdated = now() WHERE c.idchat = p_idchat;
      ELSE
        UPDATE chatbot_schema.chat c SET dtupdated = now() WHERE c.idchat = p_idchat;
      END IF;
      INSERT INTO chatbot_schema.response AS r (idchat, idmessage, idllm, txcontent, txmarkdown, tinf_start, dtheartbeat, txstatus)
        VALUES (p_idchat, v_idmessage, v_idllm, p_placeholder, p_placeholder, now(), now(), 'pending')
        RETURNING r.idresponse INTO v_idresponse;
      outcome := 'ok';
      idmessage := v_idmessage;
      idresponse := v_idresponse;
      prompt := v_prompt;
      RETURN NEXT;
    END
    $fn$;
  `.execute(db);
}
