import { type Kysely, sql } from 'kysely';
import type { Db } from '../database.ts';
import { HISTOGRAM_EDGES_S } from './011-usage-rollups.ts';

/**
 * The timing of failed answers (status error or interrupted), apart, in usage_day_model: a model whose answers all
 * failed within milliseconds was listed as the fastest. The columns of migration 011 keep counting every timed answer
 * (the design note's average per model is defined over all of them); the page's per-model timing is those minus
 * these, i.e. the answers that did not fail (complete, or stopped by their user).
 *
 * A trigger of its own (after 011's, alphabetically) keeps the new columns, so 011's functions stay as they are; the
 * backfill (foldChats in 011) fills them too. Rows already counted are filled here in one statement over the failed
 * answers only (few, compared with all of them). Chats deleted before this migration have no rows left: their failed
 * answers count as not failed in the split (their totals in 011's columns are kept).
 */
const BUCKETS = HISTOGRAM_EDGES_S.length + 1;
const zeros = sql.raw(`array_fill(0, ARRAY[${BUCKETS}])`);

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.usage_day_model
      ADD COLUMN ntimed_failed INTEGER NOT NULL DEFAULT 0,
      ADD COLUMN sum_inf_failed_s NUMERIC NOT NULL DEFAULT 0,
      ADD COLUMN ntoken_timed_failed_tokens BIGINT NOT NULL DEFAULT 0,
      ADD COLUMN sum_token_gen_failed_s NUMERIC NOT NULL DEFAULT 0,
      ADD COLUMN hist_inf_failed INTEGER[] NOT NULL DEFAULT ${zeros},
      ADD COLUMN hist_ttft_failed INTEGER[] NOT NULL DEFAULT ${zeros};

    -- A histogram of many durations in one aggregate (the backfills), with 011's bucket rule.
    CREATE FUNCTION chatbot_schema.usage_hist_step(arr INTEGER[], seconds NUMERIC) RETURNS INTEGER[]
    LANGUAGE sql IMMUTABLE AS $$ SELECT chatbot_schema.usage_hist_add(arr, seconds, 1) $$;
    CREATE AGGREGATE chatbot_schema.usage_hist_agg(NUMERIC) (SFUNC = chatbot_schema.usage_hist_step, STYPE = INTEGER[], INITCOND = '{${sql.raw(Array(BUCKETS).fill(0).join(','))}}');

    -- One failed response's timing, added (delta 1) or taken back (delta -1): the same durations and day as 011's.
    CREATE FUNCTION chatbot_schema.usage_fold_failed(r chatbot_schema.response, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
      v_day DATE;
      v_inf NUMERIC := EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start));
      v_ttft NUMERIC := EXTRACT(EPOCH FROM (r.tfirst_token - r.tinf_start));
      v_gen NUMERIC := CASE WHEN r.ncompletion_tokens > 0 THEN EXTRACT(EPOCH FROM (r.tinf_end - coalesce(r.tfirst_token, r.tinf_start))) END;
    BEGIN
      IF r.txstatus NOT IN ('error', 'interrupted') OR NOT chatbot_schema.usage_counts(r.idchat) THEN RETURN; END IF;
      v_day := chatbot_schema.usage_day(coalesce(r.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = r.idmessage), now()));
      IF v_gen IS NOT NULL AND v_gen <= 0 THEN v_gen := NULL; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm) VALUES (v_day, r.idllm) ON CONFLICT (dday, idllm) DO NOTHING;
      UPDATE chatbot_schema.usage_day_model t SET
        ntimed_failed = t.ntimed_failed + CASE WHEN v_inf IS NOT NULL THEN delta ELSE 0 END,
        sum_inf_failed_s = t.sum_inf_failed_s + coalesce(v_inf, 0) * delta,
        ntoken_timed_failed_tokens = t.ntoken_timed_failed_tokens + CASE WHEN v_gen IS NOT NULL THEN r.ncompletion_tokens * delta ELSE 0 END,
        sum_token_gen_failed_s = t.sum_token_gen_failed_s + coalesce(v_gen, 0) * delta,
        hist_inf_failed = chatbot_schema.usage_hist_add(t.hist_inf_failed, v_inf, delta),
        hist_ttft_failed = chatbot_schema.usage_hist_add(t.hist_ttft_failed, v_ttft, delta)
      WHERE t.dday = v_day AND t.idllm = r.idllm;
    END $$;

    CREATE FUNCTION chatbot_schema.usage_failed_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN PERFORM chatbot_schema.usage_fold_failed(OLD, -1); END IF;
      PERFORM chatbot_schema.usage_fold_failed(NEW, 1);
      RETURN NULL;
    END $$;

    CREATE TRIGGER usage_response_failed AFTER INSERT OR UPDATE OF txstatus, idchat, idmessage, idllm, tinf_start, tinf_end, tfirst_token, nprompt_tokens, ncompletion_tokens
      ON chatbot_schema.response
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_failed_trigger();
  `.execute(db);

  await fillFailedTiming(db as Db);
}

/** The failed answers of chats the rollups already hold (the rest arrive through the backfill's batches). */
export async function fillFailedTiming(db: Db): Promise<void> {
  await sql`
    UPDATE chatbot_schema.usage_day_model t SET ntimed_failed = a.ntimed, sum_inf_failed_s = a.sum_inf, ntoken_timed_failed_tokens = a.tokens,
      sum_token_gen_failed_s = a.gen, hist_inf_failed = a.hist_inf, hist_ttft_failed = a.hist_ttft
    FROM (
      SELECT dday, idllm, count(inf)::int AS ntimed, coalesce(sum(inf), 0) AS sum_inf, coalesce(sum(ncompletion_tokens) FILTER (WHERE gen IS NOT NULL), 0) AS tokens,
        coalesce(sum(gen), 0) AS gen, chatbot_schema.usage_hist_agg(inf) AS hist_inf, chatbot_schema.usage_hist_agg(ttft) AS hist_ttft
      FROM (
        SELECT chatbot_schema.usage_day(coalesce(x.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = x.idmessage), now())) AS dday,
          x.idllm, x.ncompletion_tokens,
          EXTRACT(EPOCH FROM (x.tinf_end - x.tinf_start)) AS inf,
          EXTRACT(EPOCH FROM (x.tfirst_token - x.tinf_start)) AS ttft,
          CASE WHEN x.ncompletion_tokens > 0 AND x.tinf_end > coalesce(x.tfirst_token, x.tinf_start)
            THEN EXTRACT(EPOCH FROM (x.tinf_end - coalesce(x.tfirst_token, x.tinf_start))) END AS gen
        FROM chatbot_schema.response x
        WHERE x.txstatus IN ('error', 'interrupted') AND chatbot_schema.usage_counts(x.idchat)
      ) f
      GROUP BY 1, 2
    ) a
    WHERE t.dday = a.dday AND t.idllm = a.idllm
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TRIGGER IF EXISTS usage_response_failed ON chatbot_schema.response;
    DROP FUNCTION IF EXISTS chatbot_schema.usage_failed_trigger, chatbot_schema.usage_fold_failed;
    DROP AGGREGATE IF EXISTS chatbot_schema.usage_hist_agg(NUMERIC);
    DROP FUNCTION IF EXISTS chatbot_schema.usage_hist_step;
    ALTER TABLE chatbot_schema.usage_day_model DROP COLUMN IF EXISTS ntimed_failed, DROP COLUMN IF EXISTS sum_inf_failed_s,
      DROP COLUMN IF EXISTS ntoken_timed_failed_tokens, DROP COLUMN IF EXISTS sum_token_gen_failed_s,
      DROP COLUMN IF EXISTS hist_inf_failed, DROP COLUMN IF EXISTS hist_ttft_failed;
  `.execute(db);
}
