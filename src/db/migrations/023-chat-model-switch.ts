import { type Kysely, sql } from 'kysely';

/**
 * A chat's model can be switched (PATCH /api/chats/:id {llm}) and a regenerate may ask another model for one answer
 * (docs/decisions/019-chat-model-switch.md). begin_answer (020) takes `p_idllm`: NULL asks the chat's model, as
 * before; an id asks that model for this answer only. Either way the model is checked (access, enabled, a base URL)
 * under the chat's lock and recorded on the answer (`response.idllm`), which is what the usage rollups count.
 * A model id that no longer exists is `model_unavailable`, like a disabled one. Otherwise the body is 020's.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS chatbot_schema.begin_answer(integer, integer, text, text, integer, text, integer)`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.begin_answer(
      p_idappuser integer, p_idchat integer, p_prompt text, p_title text, p_max_active integer, p_placeholder text, p_owner integer,
      p_idllm integer
    ) RETURNS TABLE (
      outcome text, idmessage integer, idresponse integer, prompt text, history json,
      idllm integer, txshortname text, txbase_url text, txapi_key_enc text, txmodel text, is_enabled boolean,
      limit_name text, limit_value bigint, resets_at timestamptz, prompts_left bigint, tokens_left_day bigint, tokens_left_month bigint
    )
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      v_idllm integer;
      v_idmessage integer;
      v_idresponse integer;
      v_prompt text := p_prompt;
      v_active integer;
      v_estimate integer;
      v_admit record;
    BEGIN
      -- The lock comes before every check: it is what makes "busy" true for all but the first of simultaneous requests.
      SELECT c.idllm INTO v_idllm FROM chatbot_schema.chat c WHERE c.idchat = p_idchat AND c.idappuser = p_idappuser FOR UPDATE;
      IF NOT FOUND THEN
        outcome := 'not_found'; RETURN NEXT; RETURN;
      END IF;
      -- A regenerate may ask another model for this one answer; the chat keeps its own.
      v_idllm := coalesce(p_idllm, v_idllm);
      IF NOT chatbot_schema.may_use_model(p_idappuser, v_idllm) THEN
        outcome := 'forbidden'; RETURN NEXT; RETURN;
      END IF;
      IF EXISTS (SELECT 1 FROM chatbot_schema.response r WHERE r.idchat = p_idchat AND r.txstatus IN ('pending', 'streaming')) THEN
        outcome := 'busy'; RETURN NEXT; RETURN;
      END IF;
      SELECT l.idllm, l.txshortname, l.txbase_url, l.txapi_key_enc, l.txmodel, l.is_enabled
        INTO idllm, txshortname, txbase_url, txapi_key_enc, txmodel, is_enabled
        FROM chatbot_schema.llm l WHERE l.idllm = v_idllm;
      IF NOT FOUND OR NOT is_enabled OR txbase_url IS NULL THEN
        outcome := 'model_unavailable'; RETURN NEXT; RETURN;
      END IF;
      IF p_prompt IS NULL THEN
        SELECT m.idmessage, m.txmessage INTO v_idmessage, v_prompt
          FROM chatbot_schema.message m WHERE m.idchat = p_idchat ORDER BY m.idmessage DESC LIMIT 1;
        IF v_idmessage IS NULL THEN
          outcome := 'no_message'; RETURN NEXT; RETURN;
        END IF;
      END IF;

      -- The conversation before this prompt: each earlier prompt with its latest answer (none if only the placeholder).
      SELECT coalesce(json_agg(json_build_object('prompt', m.txmessage, 'answer', nullif(r.txmarkdown, p_placeholder), 'status', r.txstatus)
                               ORDER BY m.idmessage), '[]'::json)
        INTO history
        FROM chatbot_schema.message m
        LEFT JOIN LATERAL (SELECT x.txmarkdown, x.txstatus FROM chatbot_schema.response x
                           WHERE x.idmessage = m.idmessage ORDER BY x.idresponse DESC LIMIT 1) r ON true
        WHERE m.idchat = p_idchat AND (v_idmessage IS NULL OR m.idmessage < v_idmessage);

      -- The per-user limit of answers at once, across chats: the same lock-then-count as 004.
      PERFORM 1 FROM chatbot_schema.app_user u WHERE u.idappuser = p_idappuser FOR UPDATE;
      SELECT count(*) INTO v_active
        FROM chatbot_schema.response r JOIN chatbot_schema.chat c ON c.idchat = r.idchat
        WHERE c.idappuser = p_idappuser AND r.txstatus IN ('pending', 'streaming');
      IF v_active >= p_max_active THEN
        outcome := 'limit'; RETURN NEXT; RETURN;
      END IF;

      -- Usage limits: checked and reserved in one step (a regenerate asks the model again, so it counts as a prompt).
      v_estimate := ceil(length(v_prompt) / 4.0);
      SELECT * INTO v_admit FROM chatbot_schema.admit_prompt(p_idappuser, v_idllm, v_estimate);
      limit_name := v_admit.limit_name; limit_value := v_admit.limit_value; resets_at := v_admit.resets_at;
      prompts_left := v_admit.prompts_left; tokens_left_day := v_admit.tokens_left_day; tokens_left_month := v_admit.tokens_left_month;
      IF v_admit.outcome <> 'ok' THEN
        outcome := v_admit.outcome; RETURN NEXT; RETURN;
      END IF;

      IF v_idmessage IS NULL THEN
        INSERT INTO chatbot_schema.message AS m (idchat, txmessage) VALUES (p_idchat, p_prompt) RETURNING m.idmessage INTO v_idmessage;
        UPDATE chatbot_schema.chat c SET txtitle = coalesce(c.txtitle, p_title), dtupdated = now() WHERE c.idchat = p_idchat;
      ELSE
        UPDATE chatbot_schema.chat c SET dtupdated = now() WHERE c.idchat = p_idchat;
      END IF;
      INSERT INTO chatbot_schema.response AS r (idchat, idmessage, idllm, txcontent, txmarkdown, tinf_start, dtheartbeat, txstatus, idowner, nreserved_tokens, dusage_day)
        VALUES (p_idchat, v_idmessage, v_idllm, p_placeholder, p_placeholder, now(), now(), 'pending', p_owner, v_estimate, v_admit.usage_day)
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
