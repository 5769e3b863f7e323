import { type Kysely, sql } from 'kysely';

/**
 * Rollup rows without hot spots (docs/decisions/024-rollup-slots.md). Every prompt and answer updated the same few
 * rows — today × model × source, and the caller's day and all-time rows — inside its transaction, so simultaneous
 * calls queued on those row locks while holding pooled connections (1,000 API calls at once: 503s, 4 s to the first
 * token). Each rollup key now has up to SLOTS rows (`nslot`), summed on read: a writer takes the first slot row of
 * its key that no other transaction holds (FOR UPDATE SKIP LOCKED), and only when all are held one of its own
 * (`pg_backend_pid() % SLOTS`). Without contention that is the one row there was before, so the tables do not grow;
 * under a burst the writers spread over the slots instead of waiting. Still one transaction with the counted row.
 *
 * The backfill (011's foldChats) writes slot 0; every reader sums over the slots (GROUP BY the key).
 */
export const ROLLUP_SLOTS = 16;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.usage_day_model ADD COLUMN nslot SMALLINT NOT NULL DEFAULT 0;
    ALTER TABLE chatbot_schema.usage_day_model DROP CONSTRAINT usage_day_model_pkey, ADD PRIMARY KEY (dday, idllm, txsource, nslot);
    ALTER TABLE chatbot_schema.usage_day_user ADD COLUMN nslot SMALLINT NOT NULL DEFAULT 0;
    ALTER TABLE chatbot_schema.usage_day_user DROP CONSTRAINT usage_day_user_pkey, ADD PRIMARY KEY (dday, idappuser, idllm, txsource, nslot);
    ALTER TABLE chatbot_schema.usage_user_total ADD COLUMN nslot SMALLINT NOT NULL DEFAULT 0;
    ALTER TABLE chatbot_schema.usage_user_total DROP CONSTRAINT usage_user_total_pkey, ADD PRIMARY KEY (idappuser, txsource, nslot);

    -- The slot a writer falls back to when every slot row of its key is held: its connection's own, so two
    -- connections collide only when their process ids agree modulo the number of slots.
    CREATE FUNCTION chatbot_schema.usage_own_slot() RETURNS SMALLINT
    LANGUAGE sql STABLE AS $$ SELECT (pg_backend_pid() % ${sql.raw(String(ROLLUP_SLOTS))})::smallint $$;

    -- The first slot row of a key nobody else holds, locked for this transaction (or the own slot: see above).
    CREATE FUNCTION chatbot_schema.usage_slot_day_model(p_day DATE, p_llm INTEGER, p_source TEXT) RETURNS SMALLINT
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE v_slot SMALLINT;
    BEGIN
      SELECT t.nslot INTO v_slot FROM chatbot_schema.usage_day_model t
        WHERE t.dday = p_day AND t.idllm = p_llm AND t.txsource = p_source ORDER BY t.nslot LIMIT 1 FOR UPDATE SKIP LOCKED;
      RETURN coalesce(v_slot, chatbot_schema.usage_own_slot());
    END $$;

    CREATE FUNCTION chatbot_schema.usage_slot_day_user(p_day DATE, p_user INTEGER, p_llm INTEGER, p_source TEXT) RETURNS SMALLINT
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE v_slot SMALLINT;
    BEGIN
      SELECT t.nslot INTO v_slot FROM chatbot_schema.usage_day_user t
        WHERE t.dday = p_day AND t.idappuser = p_user AND t.idllm = p_llm AND t.txsource = p_source ORDER BY t.nslot LIMIT 1 FOR UPDATE SKIP LOCKED;
      RETURN coalesce(v_slot, chatbot_schema.usage_own_slot());
    END $$;

    CREATE FUNCTION chatbot_schema.usage_slot_user_total(p_user INTEGER, p_source TEXT) RETURNS SMALLINT
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE v_slot SMALLINT;
    BEGIN
      SELECT t.nslot INTO v_slot FROM chatbot_schema.usage_user_total t
        WHERE t.idappuser = p_user AND t.txsource = p_source ORDER BY t.nslot LIMIT 1 FOR UPDATE SKIP LOCKED;
      RETURN coalesce(v_slot, chatbot_schema.usage_own_slot());
    END $$;
  `.execute(db);

  // 019's three fold functions, unchanged but for the slot in each upsert.
  await sql`
    CREATE OR REPLACE FUNCTION chatbot_schema.usage_fold_message(p_idchat INTEGER, p_created TIMESTAMPTZ, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_user INTEGER; v_llm INTEGER; v_day DATE := chatbot_schema.usage_day(p_created);
    BEGIN
      IF NOT chatbot_schema.usage_counts(p_idchat) THEN RETURN; END IF;
      SELECT c.idappuser, c.idllm INTO v_user, v_llm FROM chatbot_schema.chat c WHERE c.idchat = p_idchat;
      IF v_user IS NULL THEN RETURN; END IF;
      PERFORM chatbot_schema.usage_add_prompt('web', v_user, v_llm, v_day, p_created, delta);
    END $$;

    -- One prompt of a source, added (delta 1) or taken back (delta -1): chat's messages and API calls.
    CREATE FUNCTION chatbot_schema.usage_add_prompt(p_source TEXT, p_user INTEGER, p_llm INTEGER, p_day DATE, p_at TIMESTAMPTZ, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, txsource, nslot, nprompts)
        VALUES (p_day, p_llm, p_source, chatbot_schema.usage_slot_day_model(p_day, p_llm, p_source), delta)
        ON CONFLICT (dday, idllm, txsource, nslot) DO UPDATE SET nprompts = t.nprompts + delta;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, txsource, nslot, nprompts, dtlast)
        VALUES (p_day, p_user, p_llm, p_source, chatbot_schema.usage_slot_day_user(p_day, p_user, p_llm, p_source), delta, p_at)
        ON CONFLICT (dday, idappuser, idllm, txsource, nslot) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, txsource, nslot, models, nprompts, dtlast)
        VALUES (p_user, p_source, chatbot_schema.usage_slot_user_total(p_user, p_source), ARRAY[p_llm], delta, p_at)
        ON CONFLICT (idappuser, txsource, nslot) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast),
          models = CASE WHEN p_llm = ANY (t.models) THEN t.models ELSE t.models || p_llm END;
    END $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.usage_fold_answer(p_source TEXT, p_user INTEGER, p_llm INTEGER, p_day DATE, p_status TEXT,
      p_start TIMESTAMPTZ, p_first TIMESTAMPTZ, p_end TIMESTAMPTZ, p_prompt_tokens INTEGER, p_completion_tokens INTEGER, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
      v_inf NUMERIC := EXTRACT(EPOCH FROM (p_end - p_start));
      v_ttft NUMERIC := EXTRACT(EPOCH FROM (p_first - p_start));
      v_gen NUMERIC := CASE WHEN p_completion_tokens > 0 THEN EXTRACT(EPOCH FROM (p_end - coalesce(p_first, p_start))) END;
      v_is_failed BOOLEAN := p_status IN ('error', 'interrupted');
      v_failed INTEGER := CASE WHEN p_status IN ('error', 'interrupted') THEN delta ELSE 0 END;
      v_slot SMALLINT := chatbot_schema.usage_slot_day_model(p_day, p_llm, p_source);
    BEGIN
      IF v_gen IS NOT NULL AND v_gen <= 0 THEN v_gen := NULL; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, txsource, nslot) VALUES (p_day, p_llm, p_source, v_slot)
        ON CONFLICT (dday, idllm, txsource, nslot) DO NOTHING;
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
      WHERE t.dday = p_day AND t.idllm = p_llm AND t.txsource = p_source AND t.nslot = v_slot;
      IF p_user IS NULL THEN RETURN; END IF;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, txsource, nslot, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (p_day, p_user, p_llm, p_source, chatbot_schema.usage_slot_day_user(p_day, p_user, p_llm, p_source), delta, v_failed,
          coalesce(p_prompt_tokens, 0) * delta, coalesce(p_completion_tokens, 0) * delta, p_end)
        ON CONFLICT (dday, idappuser, idllm, txsource, nslot) DO UPDATE SET
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, txsource, nslot, models, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (p_user, p_source, chatbot_schema.usage_slot_user_total(p_user, p_source), ARRAY[p_llm], delta, v_failed,
          coalesce(p_prompt_tokens, 0) * delta, coalesce(p_completion_tokens, 0) * delta, p_end)
        ON CONFLICT (idappuser, txsource, nslot) DO UPDATE SET
          models = CASE WHEN p_llm = ANY (t.models) THEN t.models ELSE t.models || p_llm END,
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
    END $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.usage_fold_api_call(a chatbot_schema.api_call, delta INTEGER, p_prompt BOOLEAN) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_day DATE := chatbot_schema.usage_day(a.tinf_start);
    BEGIN
      IF p_prompt THEN PERFORM chatbot_schema.usage_add_prompt('api', a.idappuser, a.idllm, v_day, a.tinf_start, delta); END IF;
      IF a.txstatus = 'running' THEN RETURN; END IF;
      PERFORM chatbot_schema.usage_fold_answer('api', a.idappuser, a.idllm, v_day,
        CASE a.txstatus WHEN 'client_gone' THEN 'stopped' ELSE a.txstatus END,
        a.tinf_start, a.tfirst_token, a.tinf_end, a.nprompt_tokens, a.ncompletion_tokens, delta);
    END $$;
  `.execute(db);
}
