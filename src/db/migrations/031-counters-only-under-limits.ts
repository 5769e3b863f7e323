import { type Kysely, sql } from 'kysely';

/**
 * The usage counters only for users a limit applies to (docs/decisions/024-rollup-slots.md). 020's admit_prompt
 * upserted and locked the caller's day and month counter rows for every prompt, limit or not: a script sending 1,000
 * calls at once queued them all on one row lock while each held a pooled connection. Now it reads the caller's
 * effective limits first and, with none set, admits at once with no reservation (usage_day NULL, so neither the
 * response's nor the API call's settle trigger touches a counter). Under a limit it is 020's check, unchanged: lock,
 * read the limits again, check, reserve.
 *
 * What was used while no limit applied is not lost: a counter row is created, at the first prompt under a limit in a
 * period, from that period's statistics (usage_day_user: its prompts and tokens, as 020 filled the first counters),
 * and /settings/usage shows the same figures until then. Left as is: a limit lifted and set again within one period
 * does not see the use in between (its row already exists), and calls running at the moment a limit first applies
 * count their prompt but not their tokens.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- What the statistics hold of a user's period ('day' or 'month' starting p_start): a new counter row starts from it.
    CREATE FUNCTION chatbot_schema.usage_counter_seed(p_idappuser INTEGER, p_period TEXT, p_start DATE)
    RETURNS TABLE (nprompts BIGINT, ntokens BIGINT)
    LANGUAGE sql STABLE AS $$
      SELECT coalesce(sum(u.nprompts), 0)::bigint, coalesce(sum(u.nprompt_tokens + u.ncompletion_tokens), 0)::bigint
      FROM chatbot_schema.usage_day_user u
      WHERE u.idappuser = p_idappuser AND u.dday >= p_start
        AND u.dday < CASE WHEN p_period = 'day' THEN p_start + 1 ELSE (p_start + interval '1 month')::date END
    $$;

    CREATE OR REPLACE FUNCTION chatbot_schema.admit_prompt(p_idappuser INTEGER, p_idllm INTEGER, p_tokens INTEGER)
    RETURNS TABLE (outcome TEXT, limit_name TEXT, limit_value BIGINT, resets_at TIMESTAMPTZ, usage_day DATE,
                   prompts_left BIGINT, tokens_left_day BIGINT, tokens_left_month BIGINT)
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      v_tz TEXT := (SELECT s.txtimezone FROM chatbot_schema.usage_rollup_state s);
      v_day DATE := (now() AT TIME ZONE v_tz)::date;
      v_month DATE := date_trunc('month', v_day)::date;
      v_may BOOLEAN := chatbot_schema.may_use_model(p_idappuser, p_idllm);
      v_lim RECORD;
      v_dp INTEGER; v_dt BIGINT; v_mt BIGINT;
    BEGIN
      IF v_may IS NULL THEN outcome := 'not_found'; RETURN NEXT; RETURN; END IF;
      IF NOT v_may THEN outcome := 'forbidden'; RETURN NEXT; RETURN; END IF;
      SELECT * INTO v_lim FROM chatbot_schema.effective_limits(p_idappuser);
      IF v_lim.prompts_per_day IS NULL AND v_lim.tokens_per_day IS NULL AND v_lim.tokens_per_month IS NULL THEN
        -- No limit: nothing to reserve, no row to lock (usage_day NULL: nothing to settle).
        outcome := 'ok'; RETURN NEXT; RETURN;
      END IF;
      INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart, nprompts, ntokens)
        SELECT p_idappuser, 'day', v_day, s.nprompts, s.ntokens FROM chatbot_schema.usage_counter_seed(p_idappuser, 'day', v_day) s
        ON CONFLICT DO NOTHING;
      INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart, nprompts, ntokens)
        SELECT p_idappuser, 'month', v_month, s.nprompts, s.ntokens FROM chatbot_schema.usage_counter_seed(p_idappuser, 'month', v_month) s
        ON CONFLICT DO NOTHING;
      SELECT c.nprompts, c.ntokens INTO v_dp, v_dt FROM chatbot_schema.usage_counter c
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'day' AND c.dstart = v_day FOR UPDATE;
      SELECT c.ntokens INTO v_mt FROM chatbot_schema.usage_counter c
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'month' AND c.dstart = v_month FOR UPDATE;
      -- Read again after the lock: a limit an admin changed meanwhile applies to this prompt.
      SELECT * INTO v_lim FROM chatbot_schema.effective_limits(p_idappuser);
      usage_day := v_day;
      IF v_lim.prompts_per_day IS NOT NULL AND v_dp + 1 > v_lim.prompts_per_day THEN
        outcome := 'over_limit'; limit_name := 'prompts_per_day'; limit_value := v_lim.prompts_per_day;
      ELSIF v_lim.tokens_per_day IS NOT NULL AND v_dt + p_tokens > v_lim.tokens_per_day THEN
        outcome := 'over_limit'; limit_name := 'tokens_per_day'; limit_value := v_lim.tokens_per_day;
      ELSIF v_lim.tokens_per_month IS NOT NULL AND v_mt + p_tokens > v_lim.tokens_per_month THEN
        outcome := 'over_limit'; limit_name := 'tokens_per_month'; limit_value := v_lim.tokens_per_month;
      END IF;
      IF outcome = 'over_limit' THEN
        resets_at := CASE WHEN limit_name = 'tokens_per_month' THEN (v_month + interval '1 month')::timestamp ELSE (v_day + 1)::timestamp END AT TIME ZONE v_tz;
        RETURN NEXT; RETURN;
      END IF;
      UPDATE chatbot_schema.usage_counter c SET nprompts = c.nprompts + 1, ntokens = c.ntokens + p_tokens
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'day' AND c.dstart = v_day;
      UPDATE chatbot_schema.usage_counter c SET nprompts = c.nprompts + 1, ntokens = c.ntokens + p_tokens
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'month' AND c.dstart = v_month;
      outcome := 'ok';
      prompts_left := v_lim.prompts_per_day - v_dp - 1;
      tokens_left_day := v_lim.tokens_per_day - v_dt - p_tokens;
      tokens_left_month := v_lim.tokens_per_month - v_mt - p_tokens;
      RETURN NEXT;
    END $$;
  `.execute(db);
}
