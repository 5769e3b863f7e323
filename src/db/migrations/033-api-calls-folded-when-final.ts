import { type Kysely, sql } from 'kysely';
import { HISTOGRAM_EDGES_S } from './011-usage-rollups.ts';

const edges = sql.raw(`ARRAY[${HISTOGRAM_EDGES_S.join(',')}]::numeric[]`);
const zeros = sql.raw(
  `'{${Array(HISTOGRAM_EDGES_S.length + 1)
    .fill(0)
    .join(',')}}'`,
);
const plus = (column: string) =>
  sql.raw(`${column} = ARRAY(SELECT x.a + x.b FROM unnest(t.${column}, excluded.${column}) WITH ORDINALITY AS x(a, b, i) ORDER BY x.i)`);

/**
 * API calls counted once they are final, many in one statement (docs/decisions/026-api-calls-off-the-path.md).
 *
 * 019's row trigger folded each call twice — its prompt when the call started (three rollup upserts in the admission,
 * on the way to the first token) and its answer when it ended (three more) — one call at a time. Now a call is folded
 * whole, prompt and answer together, when it leaves 'running' (the relay's end, the sweep's 'interrupted', or a row
 * inserted already final); and the triggers are per statement, over its transition tables, so the relay can end
 * many calls in one UPDATE (src/api/call-journal.ts) and each rollup row is upserted once per statement, however many
 * calls it counts. A running call is in api_call but not yet in the statistics (at most LLM_MAX_ANSWER_S).
 *
 * The sums are 019/030's usage_fold_answer and usage_add_prompt summed over the rows (a row taken back, an update's
 * old row, with delta -1); slots as in 030.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    -- 011's usage_hist_add as an aggregate over signed rows: a histogram of many durations, each added or taken back.
    -- Its step in PL/pgSQL: an aggregate calls a SQL step through the function manager, which plans it anew in every
    -- statement (four histograms made a one-call fold 1.5 ms).
    CREATE FUNCTION chatbot_schema.usage_hist_signed_step(arr INTEGER[], seconds NUMERIC, delta INTEGER) RETURNS INTEGER[]
    LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE b INTEGER;
    BEGIN
      IF seconds IS NULL THEN RETURN arr; END IF;
      b := width_bucket(seconds, ${edges}) + 1;
      arr[b] := arr[b] + delta;
      RETURN arr;
    END $$;
    CREATE AGGREGATE chatbot_schema.usage_hist_sum(NUMERIC, INTEGER) (SFUNC = chatbot_schema.usage_hist_signed_step, STYPE = INTEGER[], INITCOND = ${zeros});

    -- The rows to fold, with 019's durations: p_added with delta 1, p_removed (an update's old rows) with -1. A table
    -- function, so the planner inlines it into each statement below.
    CREATE FUNCTION chatbot_schema.usage_api_fold_rows(p_added chatbot_schema.api_call[], p_removed chatbot_schema.api_call[])
    RETURNS TABLE (delta INTEGER, idappuser INTEGER, idllm INTEGER, dday DATE, tlast TIMESTAMPTZ, txstatus TEXT, failed BOOLEAN,
      inf NUMERIC, ttft NUMERIC, gen NUMERIC, pt INTEGER, ct INTEGER)
    LANGUAGE sql STABLE AS $$
      SELECT d.delta, d.idappuser, d.idllm, chatbot_schema.usage_day(d.tinf_start), greatest(d.tinf_start, d.tinf_end),
        CASE d.txstatus WHEN 'client_gone' THEN 'stopped' ELSE d.txstatus END, d.txstatus IN ('error', 'interrupted'),
        EXTRACT(EPOCH FROM (d.tinf_end - d.tinf_start)), EXTRACT(EPOCH FROM (d.tfirst_token - d.tinf_start)),
        CASE WHEN d.ncompletion_tokens > 0 AND d.tinf_end > coalesce(d.tfirst_token, d.tinf_start)
          THEN EXTRACT(EPOCH FROM (d.tinf_end - coalesce(d.tfirst_token, d.tinf_start))) END,
        coalesce(d.nprompt_tokens, 0), coalesce(d.ncompletion_tokens, 0)
      FROM (SELECT 1 AS delta, a.* FROM unnest(p_added) a UNION ALL SELECT -1, r.* FROM unnest(p_removed) r) d
    $$;

    -- Final API calls added to (p_added) or taken from (p_removed) the rollups, one upsert per rollup row. Generic
    -- plans: with custom ones PL/pgSQL planned its three statements anew at every call (the arrays' sizes change
    -- the estimates), 0.77 ms for nothing to fold against 0.23 (pgbench, PostgreSQL 15).
    CREATE FUNCTION chatbot_schema.usage_fold_api_calls(p_added chatbot_schema.api_call[], p_removed chatbot_schema.api_call[]) RETURNS void
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
    BEGIN
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, txsource, nslot, nprompts, nresponses, ncomplete, nerror, nstopped,
        ninterrupted, ntimed, sum_inf_s, nttft, sum_ttft_s, ntoken_timed, ntoken_timed_tokens, sum_token_gen_s, nprompt_tokens,
        ncompletion_tokens, hist_inf, hist_ttft, ntimed_failed, sum_inf_failed_s, ntoken_timed_failed_tokens, sum_token_gen_failed_s,
        hist_inf_failed, hist_ttft_failed)
      SELECT f.dday, f.idllm, 'api', chatbot_schema.usage_slot_day_model(f.dday, f.idllm, 'api'), sum(f.delta), sum(f.delta),
        coalesce(sum(f.delta) FILTER (WHERE f.txstatus = 'complete'), 0), coalesce(sum(f.delta) FILTER (WHERE f.txstatus = 'error'), 0),
        coalesce(sum(f.delta) FILTER (WHERE f.txstatus = 'stopped'), 0), coalesce(sum(f.delta) FILTER (WHERE f.txstatus = 'interrupted'), 0),
        coalesce(sum(f.delta) FILTER (WHERE f.inf IS NOT NULL), 0), coalesce(sum(f.inf * f.delta), 0),
        coalesce(sum(f.delta) FILTER (WHERE f.ttft IS NOT NULL), 0), coalesce(sum(f.ttft * f.delta), 0),
        coalesce(sum(f.delta) FILTER (WHERE f.gen IS NOT NULL), 0), coalesce(sum(f.ct * f.delta) FILTER (WHERE f.gen IS NOT NULL), 0),
        coalesce(sum(f.gen * f.delta), 0), sum(f.pt * f.delta), sum(f.ct * f.delta),
        chatbot_schema.usage_hist_sum(f.inf, f.delta), chatbot_schema.usage_hist_sum(f.ttft, f.delta),
        coalesce(sum(f.delta) FILTER (WHERE f.failed AND f.inf IS NOT NULL), 0), coalesce(sum(f.inf * f.delta) FILTER (WHERE f.failed), 0),
        coalesce(sum(f.ct * f.delta) FILTER (WHERE f.failed AND f.gen IS NOT NULL), 0), coalesce(sum(f.gen * f.delta) FILTER (WHERE f.failed), 0),
        coalesce(chatbot_schema.usage_hist_sum(f.inf, f.delta) FILTER (WHERE f.failed), ${zeros}),
        coalesce(chatbot_schema.usage_hist_sum(f.ttft, f.delta) FILTER (WHERE f.failed), ${zeros})
      FROM chatbot_schema.usage_api_fold_rows(p_added, p_removed) f GROUP BY f.dday, f.idllm ORDER BY f.dday, f.idllm
      ON CONFLICT (dday, idllm, txsource, nslot) DO UPDATE SET
        nprompts = t.nprompts + excluded.nprompts, nresponses = t.nresponses + excluded.nresponses,
        ncomplete = t.ncomplete + excluded.ncomplete, nerror = t.nerror + excluded.nerror, nstopped = t.nstopped + excluded.nstopped,
        ninterrupted = t.ninterrupted + excluded.ninterrupted, ntimed = t.ntimed + excluded.ntimed, sum_inf_s = t.sum_inf_s + excluded.sum_inf_s,
        nttft = t.nttft + excluded.nttft, sum_ttft_s = t.sum_ttft_s + excluded.sum_ttft_s, ntoken_timed = t.ntoken_timed + excluded.ntoken_timed,
        ntoken_timed_tokens = t.ntoken_timed_tokens + excluded.ntoken_timed_tokens, sum_token_gen_s = t.sum_token_gen_s + excluded.sum_token_gen_s,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens, ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
        ${plus('hist_inf')}, ${plus('hist_ttft')},
        ntimed_failed = t.ntimed_failed + excluded.ntimed_failed, sum_inf_failed_s = t.sum_inf_failed_s + excluded.sum_inf_failed_s,
        ntoken_timed_failed_tokens = t.ntoken_timed_failed_tokens + excluded.ntoken_timed_failed_tokens,
        sum_token_gen_failed_s = t.sum_token_gen_failed_s + excluded.sum_token_gen_failed_s,
        ${plus('hist_inf_failed')}, ${plus('hist_ttft_failed')};

      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, txsource, nslot, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
      SELECT f.dday, f.idappuser, f.idllm, 'api', chatbot_schema.usage_slot_day_user(f.dday, f.idappuser, f.idllm, 'api'), sum(f.delta), sum(f.delta),
        coalesce(sum(f.delta) FILTER (WHERE f.failed), 0), sum(f.pt * f.delta), sum(f.ct * f.delta), max(f.tlast)
      FROM chatbot_schema.usage_api_fold_rows(p_added, p_removed) f GROUP BY f.dday, f.idappuser, f.idllm ORDER BY f.dday, f.idappuser, f.idllm
      ON CONFLICT (dday, idappuser, idllm, txsource, nslot) DO UPDATE SET
        nprompts = t.nprompts + excluded.nprompts, nresponses = t.nresponses + excluded.nresponses, nfailed = t.nfailed + excluded.nfailed,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens, ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
        dtlast = greatest(t.dtlast, excluded.dtlast);

      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, txsource, nslot, models, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
      SELECT f.idappuser, 'api', chatbot_schema.usage_slot_user_total(f.idappuser, 'api'), array_agg(DISTINCT f.idllm), sum(f.delta), sum(f.delta),
        coalesce(sum(f.delta) FILTER (WHERE f.failed), 0), sum(f.pt * f.delta), sum(f.ct * f.delta), max(f.tlast)
      FROM chatbot_schema.usage_api_fold_rows(p_added, p_removed) f GROUP BY f.idappuser ORDER BY f.idappuser
      ON CONFLICT (idappuser, txsource, nslot) DO UPDATE SET
        models = t.models || ARRAY(SELECT m FROM unnest(excluded.models) m WHERE m <> ALL (t.models)),
        nprompts = t.nprompts + excluded.nprompts, nresponses = t.nresponses + excluded.nresponses, nfailed = t.nfailed + excluded.nfailed,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens, ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
        dtlast = greatest(t.dtlast, excluded.dtlast);
    END $$;

    CREATE FUNCTION chatbot_schema.usage_api_calls_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM new_calls n WHERE n.txstatus <> 'running') THEN
        PERFORM chatbot_schema.usage_fold_api_calls(ARRAY(SELECT n::chatbot_schema.api_call FROM new_calls n WHERE n.txstatus <> 'running'), '{}');
      END IF;
      RETURN NULL;
    END $$;

    CREATE FUNCTION chatbot_schema.usage_api_calls_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM chatbot_schema.usage_fold_api_calls(ARRAY(SELECT n::chatbot_schema.api_call FROM new_calls n WHERE n.txstatus <> 'running'),
        ARRAY(SELECT o::chatbot_schema.api_call FROM old_calls o WHERE o.txstatus <> 'running'));
      RETURN NULL;
    END $$;

    DROP TRIGGER usage_api_call ON chatbot_schema.api_call;
    DROP FUNCTION chatbot_schema.usage_api_call_trigger, chatbot_schema.usage_fold_api_call;
    CREATE TRIGGER usage_api_calls_inserted AFTER INSERT ON chatbot_schema.api_call
      REFERENCING NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.usage_api_calls_inserted();
    CREATE TRIGGER usage_api_calls_updated AFTER UPDATE ON chatbot_schema.api_call
      REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION chatbot_schema.usage_api_calls_updated();

    -- 024's settling, only for a call that holds a reservation (under a limit): the others skip the function call.
    DROP TRIGGER api_call_settle ON chatbot_schema.api_call;
    CREATE TRIGGER api_call_settle AFTER UPDATE OF txstatus ON chatbot_schema.api_call
      FOR EACH ROW WHEN (NEW.dusage_day IS NOT NULL) EXECUTE FUNCTION chatbot_schema.api_call_settle_trigger();
  `.execute(db);
}
