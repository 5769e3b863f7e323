import { type Kysely, sql } from 'kysely';

/**
 * The OpenAI-compatible API (docs/decisions/015-openai-compatible-api.md).
 *
 * - `api_key`: personal keys, only their SHA-256 stored (like sessions and reset links).
 * - `api_call`: one row per /v1/chat/completions call — who, which key and model, timing, tokens, status; never the
 *   content. Its trigger folds it into the usage rollups in the same transaction as the write (decision record 006).
 * - The rollups gain `txsource` ('web' or 'api') in their keys, so every page can show both and split by them. The
 *   chat triggers of 011 and 017 are redefined with the new conflict targets; their rows are 'web' by default.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE chatbot_schema.api_key (
      idapikey SERIAL PRIMARY KEY,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      txname TEXT NOT NULL,
      -- The first characters of the key, shown so its owner recognizes it; far too few to guess the rest from.
      txprefix TEXT NOT NULL,
      -- SHA-256 of the whole key, hex: the lookup is by this, the key itself is never stored.
      txhash TEXT NOT NULL UNIQUE,
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now(),
      dtexpires TIMESTAMPTZ,
      dtrevoked TIMESTAMPTZ
    );
    CREATE INDEX api_key_user_idx ON chatbot_schema.api_key (idappuser);

    CREATE TABLE chatbot_schema.api_call (
      idapicall BIGSERIAL PRIMARY KEY,
      idappuser INTEGER NOT NULL,
      idapikey INTEGER,
      idllm INTEGER NOT NULL,
      -- running, then complete, error, client_gone (the caller disconnected) or interrupted (shutdown, crash).
      txstatus TEXT NOT NULL DEFAULT 'running' CHECK (txstatus IN ('running', 'complete', 'error', 'client_gone', 'interrupted')),
      tinf_start TIMESTAMPTZ NOT NULL DEFAULT now(),
      tfirst_token TIMESTAMPTZ,
      tinf_end TIMESTAMPTZ,
      nprompt_tokens INTEGER,
      ncompletion_tokens INTEGER,
      -- The upstream sent no usage: the token counts are estimated from the text (4 characters a token).
      is_estimated BOOLEAN NOT NULL DEFAULT FALSE,
      txerror TEXT
    );
    CREATE INDEX api_call_key_idx ON chatbot_schema.api_call (idapikey, tinf_start);
    CREATE INDEX api_call_running_idx ON chatbot_schema.api_call (txstatus) WHERE txstatus = 'running';

    ALTER TABLE chatbot_schema.usage_day_model ADD COLUMN txsource TEXT NOT NULL DEFAULT 'web' CHECK (txsource IN ('web', 'api'));
    ALTER TABLE chatbot_schema.usage_day_model DROP CONSTRAINT usage_day_model_pkey, ADD PRIMARY KEY (dday, idllm, txsource);
    ALTER TABLE chatbot_schema.usage_day_user ADD COLUMN txsource TEXT NOT NULL DEFAULT 'web' CHECK (txsource IN ('web', 'api'));
    ALTER TABLE chatbot_schema.usage_day_user DROP CONSTRAINT usage_day_user_pkey, ADD PRIMARY KEY (dday, idappuser, idllm, txsource);
    ALTER TABLE chatbot_schema.usage_user_total ADD COLUMN txsource TEXT NOT NULL DEFAULT 'web' CHECK (txsource IN ('web', 'api'));
    ALTER TABLE chatbot_schema.usage_user_total DROP CONSTRAINT usage_user_total_pkey, ADD PRIMARY KEY (idappuser, txsource);
  `.execute(db);

  // 011's and 017's functions, unchanged but for the conflict targets and the source of the row they update ('web').
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.usage_fold_message(p_idchat INTEGER, p_created TIMESTAMPTZ, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_user INTEGER; v_llm INTEGER; v_day DATE := chatbot_schema.usage_day(p_created);
    BEGIN
      IF NOT chatbot_schema.usage_counts(p_idchat) THEN RETURN; END IF;
      SELECT c.idappuser, c.idllm INTO v_user, v_llm FROM chatbot_schema.chat c WHERE c.idchat = p_idchat;
      IF v_user IS NULL THEN RETURN; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, nprompts) VALUES (v_day, v_llm, delta)
        ON CONFLICT (dday, idllm, txsource) DO UPDATE SET nprompts = t.nprompts + delta;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, nprompts, dtlast) VALUES (v_day, v_user, v_llm, delta, p_created)
        ON CONFLICT (dday, idappuser, idllm, txsource) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, models, nprompts, dtlast) VALUES (v_user, ARRAY[v_llm], delta, p_created)
        ON CONFLICT (idappuser, txsource) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast),
          models = CASE WHEN v_llm = ANY (t.models) THEN t.models ELSE t.models || v_llm END;
    END $$;
  `.execute(db);

  // One final answer's contribution, for a source: chat's responses and API calls share it. The figures are passed in,
  // so the two tables with different shapes fold the same way.
  await sql`
    CREATE FUNCTION chatbot_schema.usage_fold_answer(p_source TEXT, p_user INTEGER, p_llm INTEGER, p_day DATE, p_status TEXT,
      p_start TIMESTAMPTZ, p_first TIMESTAMPTZ, p_end TIMESTAMPTZ, p_prompt_tokens INTEGER, p_completion_tokens INTEGER, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
      v_inf NUMERIC := EXTRACT(EPOCH FROM (p_end - p_start));
      v_ttft NUMERIC := EXTRACT(EPOCH FROM (p_first - p_start));
      v_gen NUMERIC := CASE WHEN p_completion_tokens > 0 THEN EXTRACT(EPOCH FROM (p_end - coalesce(p_first, p_start))) END;
      v_is_failed BOOLEAN := p_status IN ('error', 'interrupted');
      v_failed INTEGER := CASE WHEN p_status IN ('error', 'interrupted') THEN delta ELSE 0 END;
    BEGIN
      IF v_gen IS NOT NULL AND v_gen <= 0 THEN v_gen := NULL; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, txsource) VALUES (p_day, p_llm, p_source) ON CONFLICT (dday, idllm, txsource) DO NOTHING;
      UPDATE chatbot_schema.usage_day_model t SET
        nresponses = t.nresponses + delta,
        ncomplete = t.ncomplete + CASE WHEN p_status = 'complete' THEN delta ELSE 0 END,
        nerror = t.nerror + CASE WHEN p_status = 'error' THEN delta ELSE 0 END,
        nstopped = t.nstopped + CASE WHEN p_status = 'stopped' THEN delta ELSE 0 END,
        ninterrupted = t.ninterrupted + CASE WHEN p_status = 'interrupted' THEN delta ELSE 0 END,
        ntimed = t.ntimed + CASE WHEN v_inf IS NOT NULL THEN delta ELSE 0 END,
        sum_inf_s = t.sum_inf_s + coalesce(v_inf, 0) * delta,
        nttft = t.nttft + CASE WHEN v_ttft IS NOT NULL THEN delta ELSE 0 END,
        sum_ttft_s = t.sum_ttft_s + coalesce(v_ttft, 0) * delta,
        ntoken_timed = t.ntoken_timed + CASE WHEN v_gen IS NOT NULL THEN delta ELSE 0 END,
        ntoken_timed_tokens = t.ntoken_timed_tokens + CASE WHEN v_gen IS NOT NULL THEN p_completion_tokens * delta ELSE 0 END,
        sum_token_gen_s = t.sum_token_gen_s + coalesce(v_gen, 0) * delta,
        nprompt_tokens = t.nprompt_tokens + coalesce(p_prompt_tokens, 0) * delta,
        ncompletion_tokens = t.ncompletion_tokens + coalesce(p_completion_tokens, 0) * delta,
        hist_inf = chatbot_schema.usage_hist_add(t.hist_inf, v_inf, delta),
        hist_ttft = chatbot_schema.usage_hist_add(t.hist_ttft, v_ttft, delta),
        ntimed_failed = t.ntimed_failed + CASE WHEN v_is_failed AND v_inf IS NOT NULL THEN delta ELSE 0 END,
        sum_inf_failed_s = t.sum_inf_failed_s + CASE WHEN v_is_failed THEN coalesce(v_inf, 0) * delta ELSE 0 END,
        ntoken_timed_failed_tokens = t.ntoken_timed_failed_tokens + CASE WHEN v_is_failed AND v_gen IS NOT NULL THEN p_completion_tokens * delta ELSE 0 END,
        sum_token_gen_failed_s = t.sum_token_gen_failed_s + CASE WHEN v_is_failed THEN coalesce(v_gen, 0) * delta ELSE 0 END,
        hist_inf_failed = CASE WHEN v_is_failed THEN chatbot_schema.usage_hist_add(t.hist_inf_failed, v_inf, delta) ELSE t.hist_inf_failed END,
        hist_ttft_failed = CASE WHEN v_is_failed THEN chatbot_schema.usage_hist_add(t.hist_ttft_failed, v_ttft, delta) ELSE t.hist_ttft_failed END
      WHERE t.dday = p_day AND t.idllm = p_llm AND t.txsource = p_source;
      IF p_user IS NULL THEN RETURN; END IF;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, txsource, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (p_day, p_user, p_llm, p_source, delta, v_failed, coalesce(p_prompt_tokens, 0) * delta, coalesce(p_completion_tokens, 0) * delta, p_end)
        ON CONFLICT (dday, idappuser, idllm, txsource) DO UPDATE SET
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, txsource, models, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (p_user, p_source, ARRAY[p_llm], delta, v_failed, coalesce(p_prompt_tokens, 0) * delta, coalesce(p_completion_tokens, 0) * delta, p_end)
        ON CONFLICT (idappuser, txsource) DO UPDATE SET
          models = CASE WHEN p_llm = ANY (t.models) THEN t.models ELSE t.models || p_llm END,
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
    END $$;

    -- 011's function, now through usage_fold_answer, which also keeps 017's failed-answer columns.
    CREATE OR REPLACE FUNCTION chatbot_schema.usage_fold_response(r chatbot_schema.response, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_user INTEGER;
    BEGIN
      IF r.txstatus NOT IN ('complete', 'error', 'stopped', 'interrupted') OR NOT chatbot_schema.usage_counts(r.idchat) THEN RETURN; END IF;
      SELECT c.idappuser INTO v_user FROM chatbot_schema.chat c WHERE c.idchat = r.idchat;
      PERFORM chatbot_schema.usage_fold_answer('web', v_user, r.idllm,
        chatbot_schema.usage_day(coalesce(r.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = r.idmessage), now())),
        r.txstatus, r.tinf_start, r.tfirst_token, r.tinf_end, r.nprompt_tokens, r.ncompletion_tokens, delta);
    END $$;

    -- 017's trigger is folded into usage_fold_answer now.
    DROP TRIGGER usage_response_failed ON chatbot_schema.response;
    DROP FUNCTION chatbot_schema.usage_failed_trigger, chatbot_schema.usage_fold_failed;

    -- An API call: its prompt when it starts, its answer once final. A caller gone counts as 'stopped' (by its user).
    -- p_prompt: whether to fold the prompt too (an insert, or an update that moved it); the final update folds only the answer.
    CREATE FUNCTION chatbot_schema.usage_fold_api_call(a chatbot_schema.api_call, delta INTEGER, p_prompt BOOLEAN) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_day DATE := chatbot_schema.usage_day(a.tinf_start);
    BEGIN
      IF p_prompt THEN
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, txsource, nprompts) VALUES (v_day, a.idllm, 'api', delta)
        ON CONFLICT (dday, idllm, txsource) DO UPDATE SET nprompts = t.nprompts + delta;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, txsource, nprompts, dtlast) VALUES (v_day, a.idappuser, a.idllm, 'api', delta, a.tinf_start)
        ON CONFLICT (dday, idappuser, idllm, txsource) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, txsource, models, nprompts, dtlast) VALUES (a.idappuser, 'api', ARRAY[a.idllm], delta, a.tinf_start)
        ON CONFLICT (idappuser, txsource) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast),
          models = CASE WHEN a.idllm = ANY (t.models) THEN t.models ELSE t.models || a.idllm END;
      END IF;
      IF a.txstatus = 'running' THEN RETURN; END IF;
      PERFORM chatbot_schema.usage_fold_answer('api', a.idappuser, a.idllm, v_day,
        CASE a.txstatus WHEN 'client_gone' THEN 'stopped' ELSE a.txstatus END,
        a.tinf_start, a.tfirst_token, a.tinf_end, a.nprompt_tokens, a.ncompletion_tokens, delta);
    END $$;

    CREATE FUNCTION chatbot_schema.usage_api_call_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE v_moved BOOLEAN := TG_OP = 'INSERT'
      OR (OLD.tinf_start, OLD.idappuser, OLD.idllm) IS DISTINCT FROM (NEW.tinf_start, NEW.idappuser, NEW.idllm);
    BEGIN
      IF TG_OP = 'UPDATE' THEN PERFORM chatbot_schema.usage_fold_api_call(OLD, -1, v_moved); END IF;
      PERFORM chatbot_schema.usage_fold_api_call(NEW, 1, v_moved);
      RETURN NULL;
    END $$;

    CREATE TRIGGER usage_api_call AFTER INSERT OR UPDATE ON chatbot_schema.api_call
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_api_call_trigger();
  `.execute(db);
}
