import { type Kysely, sql } from 'kysely';

/**
 * Groups, who may use which model, and usage limits (docs/decisions/016-groups-and-limits.md).
 *
 * - `user_group` and `user_group_member`: groups and their members; a group `is_managed` by sign-in takes its
 *   members from the OIDC_GROUPS_CLAIM of each sign-in, and refuses manual changes.
 * - `llm.is_restricted` + `llm_group`: a restricted model is for the members of its listed groups only
 *   (admins included only through a group). may_use_model is that one rule, for every query that needs it.
 * - Limits: per group (columns of user_group) and per user (`user_limit`). effective_limits resolves them: the user's
 *   own value of each limit wins; otherwise the most generous value among their groups that set one; none: unlimited.
 * - `usage_counter`: one row per user × day and user × month (days in usage_rollup_state.txtimezone, i.e.
 *   STATS_TIMEZONE). admit_prompt checks access and the limits and reserves in the same call, under FOR UPDATE on
 *   those rows, so a burst of prompts is decided one at a time. The reservation (an estimate of the prompt's tokens)
 *   is recorded on the response; when the response reaches a final state, a trigger settles it with the real
 *   tokens, whichever code path (the answer, a stop, a sweep after a crash) wrote that state.
 * - begin_answer (006) gains the access check (`forbidden`) and the reservation (`over_limit`): a refused prompt
 *   stores nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE chatbot_schema.user_group (
      idgroup SERIAL PRIMARY KEY,
      txname TEXT NOT NULL,
      is_managed BOOLEAN NOT NULL DEFAULT FALSE,
      nprompts_per_day INTEGER CHECK (nprompts_per_day >= 0),
      ntokens_per_day BIGINT CHECK (ntokens_per_day >= 0),
      ntokens_per_month BIGINT CHECK (ntokens_per_month >= 0),
      dtcreated TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX user_group_name_idx ON chatbot_schema.user_group (lower(txname));

    CREATE TABLE chatbot_schema.user_group_member (
      idgroup INTEGER NOT NULL REFERENCES chatbot_schema.user_group (idgroup) ON DELETE CASCADE,
      idappuser INTEGER NOT NULL REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      dtadded TIMESTAMPTZ NOT NULL DEFAULT now(),
      PRIMARY KEY (idgroup, idappuser)
    );
    CREATE INDEX user_group_member_user_idx ON chatbot_schema.user_group_member (idappuser, idgroup);

    ALTER TABLE chatbot_schema.llm ADD COLUMN is_restricted BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE TABLE chatbot_schema.llm_group (
      idllm INTEGER NOT NULL REFERENCES chatbot_schema.llm (idllm) ON DELETE CASCADE,
      idgroup INTEGER NOT NULL REFERENCES chatbot_schema.user_group (idgroup) ON DELETE CASCADE,
      PRIMARY KEY (idllm, idgroup)
    );
    CREATE INDEX llm_group_group_idx ON chatbot_schema.llm_group (idgroup);

    CREATE TABLE chatbot_schema.user_limit (
      idappuser INTEGER PRIMARY KEY REFERENCES chatbot_schema.app_user (idappuser) ON DELETE CASCADE,
      nprompts_per_day INTEGER CHECK (nprompts_per_day >= 0),
      ntokens_per_day BIGINT CHECK (ntokens_per_day >= 0),
      ntokens_per_month BIGINT CHECK (ntokens_per_month >= 0)
    );

    CREATE TABLE chatbot_schema.usage_counter (
      idappuser INTEGER NOT NULL,
      txperiod TEXT NOT NULL CHECK (txperiod IN ('day', 'month')),
      dstart DATE NOT NULL,
      nprompts INTEGER NOT NULL DEFAULT 0,
      ntokens BIGINT NOT NULL DEFAULT 0,
      PRIMARY KEY (idappuser, txperiod, dstart)
    );

    -- The reservation an answer holds until it is settled (NULL: none, e.g. answers from before this migration).
    ALTER TABLE chatbot_schema.response ADD COLUMN nreserved_tokens INTEGER, ADD COLUMN dusage_day DATE;

    -- What was used before this migration today and this month counts too (the rollups know it).
    INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart, nprompts, ntokens)
      SELECT u.idappuser, 'day', u.dday, sum(u.nprompts), sum(u.nprompt_tokens + u.ncompletion_tokens)
      FROM chatbot_schema.usage_day_user u WHERE u.dday = chatbot_schema.usage_day(now())
      GROUP BY u.idappuser, u.dday;
    INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart, nprompts, ntokens)
      SELECT u.idappuser, 'month', date_trunc('month', u.dday)::date, sum(u.nprompts), sum(u.nprompt_tokens + u.ncompletion_tokens)
      FROM chatbot_schema.usage_day_user u WHERE date_trunc('month', u.dday) = date_trunc('month', chatbot_schema.usage_day(now()))
      GROUP BY u.idappuser, date_trunc('month', u.dday);
  `.execute(db);

  await sql`
    -- The one rule of model access. Plain SQL, so the planner inlines it into the queries that list models.
    CREATE FUNCTION chatbot_schema.may_use_model(p_idappuser INTEGER, p_idllm INTEGER) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
      SELECT NOT l.is_restricted OR EXISTS (
        SELECT 1 FROM chatbot_schema.llm_group lg
        JOIN chatbot_schema.user_group_member m ON m.idgroup = lg.idgroup AND m.idappuser = p_idappuser
        WHERE lg.idllm = l.idllm)
      FROM chatbot_schema.llm l WHERE l.idllm = p_idllm
    $$;

    -- A user's limits: each one their own value, else the largest value among their groups that set one, else NULL (unlimited).
    CREATE FUNCTION chatbot_schema.effective_limits(p_idappuser INTEGER)
    RETURNS TABLE (prompts_per_day INTEGER, tokens_per_day BIGINT, tokens_per_month BIGINT)
    LANGUAGE sql STABLE AS $$
      SELECT coalesce(ul.nprompts_per_day, g.prompts), coalesce(ul.ntokens_per_day, g.tokens_day), coalesce(ul.ntokens_per_month, g.tokens_month)
      FROM (SELECT max(x.nprompts_per_day) AS prompts, max(x.ntokens_per_day) AS tokens_day, max(x.ntokens_per_month) AS tokens_month
            FROM chatbot_schema.user_group_member m JOIN chatbot_schema.user_group x ON x.idgroup = m.idgroup
            WHERE m.idappuser = p_idappuser) g
      LEFT JOIN chatbot_schema.user_limit ul ON ul.idappuser = p_idappuser
    $$;

    -- Access, then the limits, then the reservation, deciding under the lock of the user's counter rows (day, then
    -- month: one order everywhere, so no deadlock). outcome: 'ok' (reserved), 'forbidden', 'over_limit' (with which
    -- limit, its value and when it resets), 'not_found' (no such model).
    CREATE FUNCTION chatbot_schema.admit_prompt(p_idappuser INTEGER, p_idllm INTEGER, p_tokens INTEGER)
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
      INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart) VALUES (p_idappuser, 'day', v_day) ON CONFLICT DO NOTHING;
      INSERT INTO chatbot_schema.usage_counter (idappuser, txperiod, dstart) VALUES (p_idappuser, 'month', v_month) ON CONFLICT DO NOTHING;
      SELECT c.nprompts, c.ntokens INTO v_dp, v_dt FROM chatbot_schema.usage_counter c
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'day' AND c.dstart = v_day FOR UPDATE;
      SELECT c.ntokens INTO v_mt FROM chatbot_schema.usage_counter c
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'month' AND c.dstart = v_month FOR UPDATE;
      -- Read after the lock: a limit an admin changed meanwhile applies to this prompt.
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

    -- Replaces a reservation by what was used: p_tokens instead of p_reserved; a failed answer gives its prompt back.
    CREATE FUNCTION chatbot_schema.settle_usage(p_idappuser INTEGER, p_day DATE, p_reserved INTEGER, p_tokens BIGINT, p_give_back BOOLEAN)
    RETURNS void LANGUAGE plpgsql VOLATILE AS $$
    DECLARE v_prompts INTEGER := CASE WHEN p_give_back THEN 1 ELSE 0 END;
    BEGIN
      UPDATE chatbot_schema.usage_counter c SET nprompts = c.nprompts - v_prompts, ntokens = c.ntokens - p_reserved + p_tokens
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'day' AND c.dstart = p_day;
      UPDATE chatbot_schema.usage_counter c SET nprompts = c.nprompts - v_prompts, ntokens = c.ntokens - p_reserved + p_tokens
        WHERE c.idappuser = p_idappuser AND c.txperiod = 'month' AND c.dstart = date_trunc('month', p_day)::date;
    END $$;

    -- An answer's reservation is settled once, when it leaves pending/streaming. Tokens: what the server reported;
    -- without a report, an estimate (4 characters a token) of the prompt reserved and the text received.
    CREATE FUNCTION chatbot_schema.usage_settle_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
      v_failed BOOLEAN := NEW.txstatus IN ('error', 'interrupted');
      v_received BIGINT := CASE WHEN NEW.tfirst_token IS NULL THEN 0 ELSE ceil(length(coalesce(NEW.txmarkdown, '')) / 4.0) END;
      v_tokens BIGINT;
    BEGIN
      IF NEW.dusage_day IS NULL OR OLD.txstatus NOT IN ('pending', 'streaming') OR NEW.txstatus IN ('pending', 'streaming') THEN RETURN NULL; END IF;
      v_tokens := coalesce(NEW.nprompt_tokens, CASE WHEN v_failed THEN 0 ELSE NEW.nreserved_tokens END) + coalesce(NEW.ncompletion_tokens, v_received);
      PERFORM chatbot_schema.settle_usage((SELECT c.idappuser FROM chatbot_schema.chat c WHERE c.idchat = NEW.idchat),
                                          NEW.dusage_day, NEW.nreserved_tokens, v_tokens, v_failed);
      RETURN NULL;
    END $$;
    CREATE TRIGGER usage_settle AFTER UPDATE OF txstatus ON chatbot_schema.response
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_settle_trigger();

    DROP FUNCTION chatbot_schema.begin_answer(integer, integer, text, text, integer, text, integer);
  `.execute(db);

  await sql`
    CREATE FUNCTION chatbot_schema.begin_answer(
      p_idappuser integer, p_idchat integer, p_prompt text, p_title text, p_max_active integer, p_placeholder text, p_owner integer
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
      IF NOT chatbot_schema.may_use_model(p_idappuser, v_idllm) THEN
        outcome := 'forbidden'; RETURN NEXT; RETURN;
      END IF;
      IF EXISTS (SELECT 1 FROM chatbot_schema.response r WHERE r.idchat = p_idchat AND r.txstatus IN ('pending', 'streaming')) THEN
        outcome := 'busy'; RETURN NEXT; RETURN;
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
