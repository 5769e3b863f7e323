import { type Kysely, sql } from 'kysely';
import type { Db } from '../database.ts';

/**
 * Daily usage rollups (docs/decisions/006-usage-rollups.md). Triggers keep them in the same transaction as the write
 * that changes them — a prompt inserted (begin_answer), a response reaching a final state (finalizeResponse, the
 * sweeps, any direct UPDATE) — so no code path can forget them and several processes need no coordination beyond
 * the row locks of the upserts. A row's contribution is subtracted before an update and added after it, so a later
 * correction (a backdated message, a fixed timestamp) keeps the sums equal to a scan of the rows. Deletes are not
 * subtracted on purpose: a deleted chat's counts stay in the statistics.
 *
 * Days are counted in usage_rollup_state.txtimezone (STATS_TIMEZONE); a process started with another zone rebuilds
 * the rollups (rebuildUsageRollups) before it serves a page.
 */

/** Upper edges (seconds) of the histogram buckets of inference time and time to first token; the last bucket is open. */
export const HISTOGRAM_EDGES_S = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];
const BUCKETS = HISTOGRAM_EDGES_S.length + 1;
const edgesSql = sql.raw(`ARRAY[${HISTOGRAM_EDGES_S.join(',')}]::numeric[]`);
const zeros = sql.raw(`array_fill(0, ARRAY[${BUCKETS}])`);

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE chatbot_schema.usage_rollup_state (
      id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
      txtimezone TEXT NOT NULL DEFAULT 'UTC',
      -- The backfill walks chats in id order, in batches that each commit: chats up to the cursor are counted, and so
      -- are chats newer than nbackfill_upto (their rows arrive through the triggers); NULL cursor: nothing left to do.
      nbackfill_cursor INTEGER,
      nbackfill_upto INTEGER
    );
    INSERT INTO chatbot_schema.usage_rollup_state (id) VALUES (TRUE);

    -- Per day and model: everything the model table, the totals and the charts need (a few rows a day).
    CREATE TABLE chatbot_schema.usage_day_model (
      dday DATE NOT NULL,
      idllm INTEGER NOT NULL,
      nprompts INTEGER NOT NULL DEFAULT 0,
      nresponses INTEGER NOT NULL DEFAULT 0,
      ncomplete INTEGER NOT NULL DEFAULT 0,
      nerror INTEGER NOT NULL DEFAULT 0,
      nstopped INTEGER NOT NULL DEFAULT 0,
      ninterrupted INTEGER NOT NULL DEFAULT 0,
      ntimed INTEGER NOT NULL DEFAULT 0,
      sum_inf_s NUMERIC NOT NULL DEFAULT 0,
      nttft INTEGER NOT NULL DEFAULT 0,
      sum_ttft_s NUMERIC NOT NULL DEFAULT 0,
      ntoken_timed INTEGER NOT NULL DEFAULT 0,
      ntoken_timed_tokens BIGINT NOT NULL DEFAULT 0,
      sum_token_gen_s NUMERIC NOT NULL DEFAULT 0,
      nprompt_tokens BIGINT NOT NULL DEFAULT 0,
      ncompletion_tokens BIGINT NOT NULL DEFAULT 0,
      hist_inf INTEGER[] NOT NULL DEFAULT ${zeros},
      hist_ttft INTEGER[] NOT NULL DEFAULT ${zeros},
      PRIMARY KEY (dday, idllm)
    );

    -- Per day, user and model: the user table, the models each user uses, /settings/usage.
    CREATE TABLE chatbot_schema.usage_day_user (
      dday DATE NOT NULL,
      idappuser INTEGER NOT NULL,
      idllm INTEGER NOT NULL,
      nprompts INTEGER NOT NULL DEFAULT 0,
      nresponses INTEGER NOT NULL DEFAULT 0,
      nfailed INTEGER NOT NULL DEFAULT 0,
      nprompt_tokens BIGINT NOT NULL DEFAULT 0,
      ncompletion_tokens BIGINT NOT NULL DEFAULT 0,
      dtlast TIMESTAMPTZ,
      PRIMARY KEY (dday, idappuser, idllm)
    );
    CREATE INDEX usage_day_user_user_idx ON chatbot_schema.usage_day_user (idappuser, dday);

    -- Per user over all time, with the models they used: the "all" range reads one row per user, not users × active days.
    CREATE TABLE chatbot_schema.usage_user_total (
      idappuser INTEGER PRIMARY KEY,
      models INTEGER[] NOT NULL DEFAULT '{}',
      nprompts INTEGER NOT NULL DEFAULT 0,
      nresponses INTEGER NOT NULL DEFAULT 0,
      nfailed INTEGER NOT NULL DEFAULT 0,
      nprompt_tokens BIGINT NOT NULL DEFAULT 0,
      ncompletion_tokens BIGINT NOT NULL DEFAULT 0,
      dtlast TIMESTAMPTZ
    );

    -- The per-chat drill-down's and the backfill's index on message (idchat, dtcreated) is built after the server
    -- listens (src/db/deferred-indexes.ts).
  `.execute(db);

  await sql`
    CREATE FUNCTION chatbot_schema.usage_hist_add(arr INTEGER[], seconds NUMERIC, delta INTEGER) RETURNS INTEGER[]
    LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE WHEN seconds IS NULL THEN arr ELSE
        arr[1:width_bucket(seconds, ${edgesSql})]
        || (arr[width_bucket(seconds, ${edgesSql}) + 1] + delta)
        || arr[width_bucket(seconds, ${edgesSql}) + 2:${sql.raw(String(BUCKETS))}]
      END
    $$;

    -- Whether the rows of this chat are in the rollups yet (see nbackfill_cursor); a trigger folds only those.
    CREATE FUNCTION chatbot_schema.usage_counts(p_idchat INTEGER) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
      SELECT s.nbackfill_cursor IS NULL OR p_idchat <= s.nbackfill_cursor OR p_idchat > s.nbackfill_upto FROM chatbot_schema.usage_rollup_state s
    $$;

    CREATE FUNCTION chatbot_schema.usage_day(ts TIMESTAMPTZ) RETURNS DATE
    LANGUAGE sql STABLE AS $$
      SELECT (ts AT TIME ZONE (SELECT s.txtimezone FROM chatbot_schema.usage_rollup_state s))::date
    $$;

    -- One message's prompt, added (delta 1) or taken back (delta -1).
    CREATE FUNCTION chatbot_schema.usage_fold_message(p_idchat INTEGER, p_created TIMESTAMPTZ, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE v_user INTEGER; v_llm INTEGER; v_day DATE := chatbot_schema.usage_day(p_created);
    BEGIN
      IF NOT chatbot_schema.usage_counts(p_idchat) THEN RETURN; END IF;
      SELECT c.idappuser, c.idllm INTO v_user, v_llm FROM chatbot_schema.chat c WHERE c.idchat = p_idchat;
      IF v_user IS NULL THEN RETURN; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, nprompts) VALUES (v_day, v_llm, delta)
        ON CONFLICT (dday, idllm) DO UPDATE SET nprompts = t.nprompts + delta;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, nprompts, dtlast) VALUES (v_day, v_user, v_llm, delta, p_created)
        ON CONFLICT (dday, idappuser, idllm) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, models, nprompts, dtlast) VALUES (v_user, ARRAY[v_llm], delta, p_created)
        ON CONFLICT (idappuser) DO UPDATE SET nprompts = t.nprompts + delta, dtlast = greatest(t.dtlast, excluded.dtlast),
          models = CASE WHEN v_llm = ANY (t.models) THEN t.models ELSE t.models || v_llm END;
    END $$;

    -- One final response's contribution. Only final states count: a pending or streaming answer is not yet one.
    CREATE FUNCTION chatbot_schema.usage_fold_response(r chatbot_schema.response, delta INTEGER) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
      v_user INTEGER;
      v_day DATE;
      v_inf NUMERIC := EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start));
      v_ttft NUMERIC := EXTRACT(EPOCH FROM (r.tfirst_token - r.tinf_start));
      v_gen NUMERIC := CASE WHEN r.ncompletion_tokens > 0 THEN EXTRACT(EPOCH FROM (r.tinf_end - coalesce(r.tfirst_token, r.tinf_start))) END;
      v_failed INTEGER := CASE WHEN r.txstatus IN ('error', 'interrupted') THEN delta ELSE 0 END;
    BEGIN
      IF r.txstatus NOT IN ('complete', 'error', 'stopped', 'interrupted') OR NOT chatbot_schema.usage_counts(r.idchat) THEN RETURN; END IF;
      SELECT c.idappuser INTO v_user FROM chatbot_schema.chat c WHERE c.idchat = r.idchat;
      -- The prompt's day: an answer belongs to the day its question was asked (adopted rows without timestamps: their message's).
      v_day := chatbot_schema.usage_day(coalesce(r.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = r.idmessage), now()));
      IF v_gen IS NOT NULL AND v_gen <= 0 THEN v_gen := NULL; END IF;
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm) VALUES (v_day, r.idllm) ON CONFLICT (dday, idllm) DO NOTHING;
      UPDATE chatbot_schema.usage_day_model t SET
        nresponses = t.nresponses + delta,
        ncomplete = t.ncomplete + CASE WHEN r.txstatus = 'complete' THEN delta ELSE 0 END,
        nerror = t.nerror + CASE WHEN r.txstatus = 'error' THEN delta ELSE 0 END,
        nstopped = t.nstopped + CASE WHEN r.txstatus = 'stopped' THEN delta ELSE 0 END,
        ninterrupted = t.ninterrupted + CASE WHEN r.txstatus = 'interrupted' THEN delta ELSE 0 END,
        ntimed = t.ntimed + CASE WHEN v_inf IS NOT NULL THEN delta ELSE 0 END,
        sum_inf_s = t.sum_inf_s + coalesce(v_inf, 0) * delta,
        nttft = t.nttft + CASE WHEN v_ttft IS NOT NULL THEN delta ELSE 0 END,
        sum_ttft_s = t.sum_ttft_s + coalesce(v_ttft, 0) * delta,
        ntoken_timed = t.ntoken_timed + CASE WHEN v_gen IS NOT NULL THEN delta ELSE 0 END,
        ntoken_timed_tokens = t.ntoken_timed_tokens + CASE WHEN v_gen IS NOT NULL THEN r.ncompletion_tokens * delta ELSE 0 END,
        sum_token_gen_s = t.sum_token_gen_s + coalesce(v_gen, 0) * delta,
        nprompt_tokens = t.nprompt_tokens + coalesce(r.nprompt_tokens, 0) * delta,
        ncompletion_tokens = t.ncompletion_tokens + coalesce(r.ncompletion_tokens, 0) * delta,
        hist_inf = chatbot_schema.usage_hist_add(t.hist_inf, v_inf, delta),
        hist_ttft = chatbot_schema.usage_hist_add(t.hist_ttft, v_ttft, delta)
      WHERE t.dday = v_day AND t.idllm = r.idllm;
      IF v_user IS NULL THEN RETURN; END IF;
      INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (v_day, v_user, r.idllm, delta, v_failed, coalesce(r.nprompt_tokens, 0) * delta, coalesce(r.ncompletion_tokens, 0) * delta, r.tinf_end)
        ON CONFLICT (dday, idappuser, idllm) DO UPDATE SET
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, models, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        VALUES (v_user, ARRAY[r.idllm], delta, v_failed, coalesce(r.nprompt_tokens, 0) * delta, coalesce(r.ncompletion_tokens, 0) * delta, r.tinf_end)
        ON CONFLICT (idappuser) DO UPDATE SET
          models = CASE WHEN r.idllm = ANY (t.models) THEN t.models ELSE t.models || r.idllm END,
          nresponses = t.nresponses + delta,
          nfailed = t.nfailed + v_failed,
          nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
          ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast);
    END $$;

    CREATE FUNCTION chatbot_schema.usage_message_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN PERFORM chatbot_schema.usage_fold_message(OLD.idchat, OLD.dtcreated, -1); END IF;
      PERFORM chatbot_schema.usage_fold_message(NEW.idchat, NEW.dtcreated, 1);
      RETURN NULL;
    END $$;

    CREATE FUNCTION chatbot_schema.usage_response_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN PERFORM chatbot_schema.usage_fold_response(OLD, -1); END IF;
      PERFORM chatbot_schema.usage_fold_response(NEW, 1);
      RETURN NULL;
    END $$;

    CREATE TRIGGER usage_message AFTER INSERT OR UPDATE OF idchat, dtcreated ON chatbot_schema.message
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_message_trigger();
    -- Heartbeats and partial text (flushPartial) change none of these columns, so they never fire it.
    CREATE TRIGGER usage_response AFTER INSERT OR UPDATE OF txstatus, idchat, idmessage, idllm, tinf_start, tinf_end, tfirst_token, nprompt_tokens, ncompletion_tokens
      ON chatbot_schema.response
      FOR EACH ROW EXECUTE FUNCTION chatbot_schema.usage_response_trigger();
  `.execute(db);

  // The backfill of existing rows (an adopted Flask database, or an upgrade) runs after start, in batches: see below.
  await restartUsageBackfill(db as Db, 'UTC');
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TRIGGER IF EXISTS usage_message ON chatbot_schema.message;
    DROP TRIGGER IF EXISTS usage_response ON chatbot_schema.response;
    DROP FUNCTION IF EXISTS chatbot_schema.usage_message_trigger, chatbot_schema.usage_response_trigger,
      chatbot_schema.usage_fold_message, chatbot_schema.usage_fold_response, chatbot_schema.usage_day, chatbot_schema.usage_counts, chatbot_schema.usage_hist_add;
    DROP TABLE IF EXISTS chatbot_schema.usage_user_total, chatbot_schema.usage_day_user, chatbot_schema.usage_day_model, chatbot_schema.usage_rollup_state;
  `.execute(db);
}

/** Chats per backfill batch: writers of messages and responses wait for one batch (about 10 prompts a chat: ~0.1 s). */
export const BACKFILL_BATCH_CHATS = 1000;

/**
 * Empties the rollups and starts counting every existing chat again, in `timeZone`: the migration (an adopted or
 * upgraded database) and a STATS_TIMEZONE change. Writers wait for this short transaction (SHARE ROW EXCLUSIVE lets
 * readers through), so no trigger folds a row between the delete and the new cursor. The batches then run after
 * start (runUsageBackfill), from any process. Counts of chats deleted earlier are lost: their rows are gone.
 */
export async function restartUsageBackfill(db: Db, timeZone: string): Promise<void> {
  const run = async (trx: Db) => {
    await sql`SELECT 1 FROM chatbot_schema.usage_rollup_state FOR UPDATE`.execute(trx);
    await sql`LOCK TABLE chatbot_schema.message, chatbot_schema.response IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    await sql`DELETE FROM chatbot_schema.usage_day_model; DELETE FROM chatbot_schema.usage_day_user; DELETE FROM chatbot_schema.usage_user_total;`.execute(trx);
    // API calls (migration 019, absent while 011 itself runs) have no backfill of their own: the final ones are counted
    // again here, at once, 10,000 at a time (migration 033's fold; a running call is counted when it ends).
    const apiCalls = await sql<{ present: boolean }>`SELECT to_regclass('chatbot_schema.api_call') IS NOT NULL AS present`.execute(trx);
    if (apiCalls.rows[0]?.present) {
      await sql`LOCK TABLE chatbot_schema.api_call IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
      await sql`
        DO $$ DECLARE lo BIGINT := 0; hi BIGINT;
        BEGIN
          LOOP
            SELECT max(s.idapicall) INTO hi FROM (SELECT a.idapicall FROM chatbot_schema.api_call a WHERE a.idapicall > lo ORDER BY a.idapicall LIMIT 10000) s;
            EXIT WHEN hi IS NULL;
            PERFORM chatbot_schema.usage_fold_api_calls(
              ARRAY(SELECT a FROM chatbot_schema.api_call a WHERE a.idapicall > lo AND a.idapicall <= hi AND a.txstatus <> 'running'), '{}');
            lo := hi;
          END LOOP;
        END $$`.execute(trx);
    }
    await sql`
      UPDATE chatbot_schema.usage_rollup_state SET txtimezone = ${timeZone},
        nbackfill_upto = (SELECT max(idchat) FROM chatbot_schema.chat),
        nbackfill_cursor = CASE WHEN EXISTS (SELECT 1 FROM chatbot_schema.chat) THEN 0 END`.execute(trx);
  };
  if (db.isTransaction) {
    await run(db);
    return;
  }
  await lockingBothTables(db, run);
}

/**
 * A transaction that locks message and response whole (the backfill's restart and batches). Answers lock their
 * response row, then (020's limit settling) the user's counters; a new prompt locks the counters, then inserts into
 * message and response. Whoever locks both tables whole closes that cycle, and PostgreSQL then aborts one of the
 * three after deadlock_timeout (1 s), possibly a person's prompt. This side gives up first instead (lock_timeout
 * 300 ms) and tries again a moment later: only the background work waits, never a chat.
 */
async function lockingBothTables<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        await sql`SET LOCAL lock_timeout = '300ms'`.execute(trx);
        return work(trx);
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== '55P03' && code !== '40P01') || attempt >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
}

/** How far the backfill is, 0–100, or null when every chat is counted. */
export async function usageBackfillPercent(db: Db): Promise<number | null> {
  const r = await sql<{ cursor: number | null; upto: number | null }>`
    SELECT nbackfill_cursor AS cursor, nbackfill_upto AS upto FROM chatbot_schema.usage_rollup_state`.execute(db);
  const row = r.rows[0];
  if (!row || row.cursor === null) return null;
  return row.upto ? Math.floor((100 * row.cursor) / row.upto) : 0;
}

/**
 * Counts the next BACKFILL_BATCH_CHATS chats and moves the cursor past them, in one transaction: the state row
 * locked first (two processes take turns), then the tables (so the rows read are final until the cursor moves and
 * the triggers take over for those chats). Returns whether anything is left.
 */
export async function backfillUsageStep(db: Db, batchChats = BACKFILL_BATCH_CHATS): Promise<boolean> {
  return lockingBothTables(db, async (trx) => {
    const state = await sql<{ txtimezone: string; cursor: number | null; upto: number | null }>`
      SELECT txtimezone, nbackfill_cursor AS cursor, nbackfill_upto AS upto FROM chatbot_schema.usage_rollup_state FOR UPDATE`.execute(trx);
    const s = state.rows[0];
    if (!s || s.cursor === null || s.upto === null) return false;
    await sql`LOCK TABLE chatbot_schema.message, chatbot_schema.response IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    // Statements are prepared once per connection (src/db/database.ts); after five runs PostgreSQL may switch to a
    // generic plan that cannot see how narrow the chat range is and scans every message (measured: 72 s instead of
    // ~10 s for a million, growing with the history). A plan for each batch's own bounds uses the idchat indexes.
    await sql`SET LOCAL plan_cache_mode = force_custom_plan`.execute(trx);
    const hi = Math.min(s.cursor + batchChats, s.upto);
    await foldChats(trx, s.txtimezone, s.cursor, hi);
    const done = hi >= s.upto;
    await sql`UPDATE chatbot_schema.usage_rollup_state SET nbackfill_cursor = ${done ? null : hi}`.execute(trx);
    return !done;
  });
}

/** Runs the backfill to its end (each batch commits, so a restart resumes where it stopped). */
export async function runUsageBackfill(db: Db): Promise<void> {
  while (await backfillUsageStep(db)) {
    // Let the app's own queries in between batches (on PGlite they share one connection).
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Recounts everything now (tests and benchmarks): restart, then every batch. */
export async function rebuildUsageRollups(db: Db, timeZone: string): Promise<void> {
  await restartUsageBackfill(db, timeZone);
  await runUsageBackfill(db);
}

/**
 * Adds the rows of chats lo < idchat <= hi to the rollups (which hold nothing of those chats yet), as source 'web'
 * (the column's default). Runs after every migration, so the conflict targets are 019's keys, which include the source.
 */
async function foldChats(trx: Db, timeZone: string, lo: number, hi: number): Promise<void> {
  await sql`
      WITH p AS (
        SELECT (m.dtcreated AT TIME ZONE ${timeZone})::date AS dday, c.idappuser, c.idllm, count(*)::int AS n, max(m.dtcreated) AS last
        FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
        WHERE m.idchat > ${lo} AND m.idchat <= ${hi} AND c.idchat > ${lo} AND c.idchat <= ${hi}
        GROUP BY 1, 2, 3
      ), r AS (
        SELECT (coalesce(x.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = x.idmessage)) AT TIME ZONE ${timeZone})::date AS dday, c.idappuser, x.idllm, x.txstatus,
          x.nprompt_tokens, x.ncompletion_tokens, x.tinf_end,
          EXTRACT(EPOCH FROM (x.tinf_end - x.tinf_start)) AS inf,
          EXTRACT(EPOCH FROM (x.tfirst_token - x.tinf_start)) AS ttft,
          CASE WHEN x.ncompletion_tokens > 0 AND x.tinf_end > coalesce(x.tfirst_token, x.tinf_start)
            THEN EXTRACT(EPOCH FROM (x.tinf_end - coalesce(x.tfirst_token, x.tinf_start))) END AS gen
        FROM chatbot_schema.response x
        JOIN chatbot_schema.chat c ON c.idchat = x.idchat
        -- Bounds on both sides of the join, and the message read only for a row without tinf_start (adopted): a join
        -- to message made the planner hash all of it for every batch.
        WHERE x.txstatus IN ('complete', 'error', 'stopped', 'interrupted') AND x.idchat > ${lo} AND x.idchat <= ${hi}
          AND c.idchat > ${lo} AND c.idchat <= ${hi}
      ), rm AS (
        SELECT dday, idllm,
          count(*)::int AS nresponses,
          (count(*) FILTER (WHERE txstatus = 'complete'))::int AS ncomplete,
          (count(*) FILTER (WHERE txstatus = 'error'))::int AS nerror,
          (count(*) FILTER (WHERE txstatus = 'stopped'))::int AS nstopped,
          (count(*) FILTER (WHERE txstatus = 'interrupted'))::int AS ninterrupted,
          count(inf)::int AS ntimed, coalesce(sum(inf), 0) AS sum_inf_s,
          count(ttft)::int AS nttft, coalesce(sum(ttft), 0) AS sum_ttft_s,
          count(gen)::int AS ntoken_timed, coalesce(sum(ncompletion_tokens) FILTER (WHERE gen IS NOT NULL), 0) AS ntoken_timed_tokens,
          coalesce(sum(gen), 0) AS sum_token_gen_s,
          coalesce(sum(nprompt_tokens), 0) AS nprompt_tokens, coalesce(sum(ncompletion_tokens), 0) AS ncompletion_tokens,
          -- Failed answers' timing apart (migration 017, which adds these columns before any batch runs).
          (count(inf) FILTER (WHERE txstatus IN ('error', 'interrupted')))::int AS ntimed_failed,
          coalesce(sum(inf) FILTER (WHERE txstatus IN ('error', 'interrupted')), 0) AS sum_inf_failed_s,
          coalesce(sum(ncompletion_tokens) FILTER (WHERE txstatus IN ('error', 'interrupted') AND gen IS NOT NULL), 0) AS ntoken_timed_failed_tokens,
          coalesce(sum(gen) FILTER (WHERE txstatus IN ('error', 'interrupted')), 0) AS sum_token_gen_failed_s,
          chatbot_schema.usage_hist_agg(inf) FILTER (WHERE txstatus IN ('error', 'interrupted')) AS hist_inf_failed,
          chatbot_schema.usage_hist_agg(ttft) FILTER (WHERE txstatus IN ('error', 'interrupted')) AS hist_ttft_failed
        FROM r GROUP BY 1, 2
      ), hb AS (
        SELECT dday, idllm, 'inf' AS kind, width_bucket(inf, ${edgesSql}) + 1 AS b, count(*)::int AS n FROM r WHERE inf IS NOT NULL GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT dday, idllm, 'ttft', width_bucket(ttft, ${edgesSql}) + 1, count(*)::int FROM r WHERE ttft IS NOT NULL GROUP BY 1, 2, 3, 4
      ), hist AS (
        SELECT k.dday, k.idllm,
          array_agg(coalesce(hi.n, 0) ORDER BY b.b) AS hist_inf, array_agg(coalesce(ht.n, 0) ORDER BY b.b) AS hist_ttft
        FROM (SELECT DISTINCT dday, idllm FROM rm) k
        CROSS JOIN generate_series(1, ${BUCKETS}) AS b(b)
        LEFT JOIN hb hi ON hi.kind = 'inf' AND hi.dday = k.dday AND hi.idllm = k.idllm AND hi.b = b.b
        LEFT JOIN hb ht ON ht.kind = 'ttft' AND ht.dday = k.dday AND ht.idllm = k.idllm AND ht.b = b.b
        GROUP BY 1, 2
      )
      INSERT INTO chatbot_schema.usage_day_model AS t (dday, idllm, nprompts, nresponses, ncomplete, nerror, nstopped, ninterrupted,
        ntimed, sum_inf_s, nttft, sum_ttft_s, ntoken_timed, ntoken_timed_tokens, sum_token_gen_s, nprompt_tokens, ncompletion_tokens, hist_inf, hist_ttft,
        ntimed_failed, sum_inf_failed_s, ntoken_timed_failed_tokens, sum_token_gen_failed_s, hist_inf_failed, hist_ttft_failed)
      SELECT k.dday, k.idllm, coalesce(pm.n, 0), coalesce(rm.nresponses, 0), coalesce(rm.ncomplete, 0), coalesce(rm.nerror, 0),
        coalesce(rm.nstopped, 0), coalesce(rm.ninterrupted, 0), coalesce(rm.ntimed, 0), coalesce(rm.sum_inf_s, 0), coalesce(rm.nttft, 0),
        coalesce(rm.sum_ttft_s, 0), coalesce(rm.ntoken_timed, 0), coalesce(rm.ntoken_timed_tokens, 0), coalesce(rm.sum_token_gen_s, 0),
        coalesce(rm.nprompt_tokens, 0), coalesce(rm.ncompletion_tokens, 0), coalesce(h.hist_inf, ${zeros}), coalesce(h.hist_ttft, ${zeros}),
        coalesce(rm.ntimed_failed, 0), coalesce(rm.sum_inf_failed_s, 0), coalesce(rm.ntoken_timed_failed_tokens, 0), coalesce(rm.sum_token_gen_failed_s, 0),
        coalesce(rm.hist_inf_failed, ${zeros}), coalesce(rm.hist_ttft_failed, ${zeros})
      FROM (SELECT dday, idllm FROM p UNION SELECT dday, idllm FROM rm) k
      LEFT JOIN (SELECT dday, idllm, sum(n)::int AS n FROM p GROUP BY 1, 2) pm ON pm.dday = k.dday AND pm.idllm = k.idllm
      LEFT JOIN rm ON rm.dday = k.dday AND rm.idllm = k.idllm
      LEFT JOIN hist h ON h.dday = k.dday AND h.idllm = k.idllm
      ON CONFLICT (dday, idllm, txsource, nslot) DO UPDATE SET
        nprompts = t.nprompts + excluded.nprompts,
        nresponses = t.nresponses + excluded.nresponses,
        ncomplete = t.ncomplete + excluded.ncomplete,
        nerror = t.nerror + excluded.nerror,
        nstopped = t.nstopped + excluded.nstopped,
        ninterrupted = t.ninterrupted + excluded.ninterrupted,
        ntimed = t.ntimed + excluded.ntimed,
        sum_inf_s = t.sum_inf_s + excluded.sum_inf_s,
        nttft = t.nttft + excluded.nttft,
        sum_ttft_s = t.sum_ttft_s + excluded.sum_ttft_s,
        ntoken_timed = t.ntoken_timed + excluded.ntoken_timed,
        ntoken_timed_tokens = t.ntoken_timed_tokens + excluded.ntoken_timed_tokens,
        sum_token_gen_s = t.sum_token_gen_s + excluded.sum_token_gen_s,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
        ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
        hist_inf = ARRAY(SELECT x.a + x.b FROM unnest(t.hist_inf, excluded.hist_inf) WITH ORDINALITY AS x(a, b, i) ORDER BY x.i),
        hist_ttft = ARRAY(SELECT x.a + x.b FROM unnest(t.hist_ttft, excluded.hist_ttft) WITH ORDINALITY AS x(a, b, i) ORDER BY x.i),
        ntimed_failed = t.ntimed_failed + excluded.ntimed_failed,
        sum_inf_failed_s = t.sum_inf_failed_s + excluded.sum_inf_failed_s,
        ntoken_timed_failed_tokens = t.ntoken_timed_failed_tokens + excluded.ntoken_timed_failed_tokens,
        sum_token_gen_failed_s = t.sum_token_gen_failed_s + excluded.sum_token_gen_failed_s,
        hist_inf_failed = ARRAY(SELECT x.a + x.b FROM unnest(t.hist_inf_failed, excluded.hist_inf_failed) WITH ORDINALITY AS x(a, b, i) ORDER BY x.i),
        hist_ttft_failed = ARRAY(SELECT x.a + x.b FROM unnest(t.hist_ttft_failed, excluded.hist_ttft_failed) WITH ORDINALITY AS x(a, b, i) ORDER BY x.i)
    `.execute(trx);
  await sql`
      WITH p AS (
        SELECT (m.dtcreated AT TIME ZONE ${timeZone})::date AS dday, c.idappuser, c.idllm, count(*)::int AS n, max(m.dtcreated) AS last
        FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
        WHERE m.idchat > ${lo} AND m.idchat <= ${hi} AND c.idchat > ${lo} AND c.idchat <= ${hi}
        GROUP BY 1, 2, 3
      ), r AS (
        SELECT (coalesce(x.tinf_start, (SELECT m.dtcreated FROM chatbot_schema.message m WHERE m.idmessage = x.idmessage)) AT TIME ZONE ${timeZone})::date AS dday, c.idappuser, x.idllm,
          count(*)::int AS n, (count(*) FILTER (WHERE x.txstatus IN ('error', 'interrupted')))::int AS nfailed,
          coalesce(sum(x.nprompt_tokens), 0) AS pt, coalesce(sum(x.ncompletion_tokens), 0) AS ct, max(x.tinf_end) AS last
        FROM chatbot_schema.response x
        JOIN chatbot_schema.chat c ON c.idchat = x.idchat
        -- Bounds on both sides of the join, and the message read only for a row without tinf_start (adopted): a join
        -- to message made the planner hash all of it for every batch.
        WHERE x.txstatus IN ('complete', 'error', 'stopped', 'interrupted') AND x.idchat > ${lo} AND x.idchat <= ${hi}
          AND c.idchat > ${lo} AND c.idchat <= ${hi}
        GROUP BY 1, 2, 3
      )
      , j AS (
        SELECT coalesce(p.dday, r.dday) AS dday, coalesce(p.idappuser, r.idappuser) AS idappuser, coalesce(p.idllm, r.idllm) AS idllm,
          coalesce(p.n, 0) AS nprompts, coalesce(r.n, 0) AS nresponses, coalesce(r.nfailed, 0) AS nfailed, coalesce(r.pt, 0) AS nprompt_tokens,
          coalesce(r.ct, 0) AS ncompletion_tokens, greatest(p.last, r.last) AS dtlast
        FROM p FULL JOIN r ON r.dday = p.dday AND r.idappuser = p.idappuser AND r.idllm = p.idllm
      ), days AS (
        INSERT INTO chatbot_schema.usage_day_user AS t (dday, idappuser, idllm, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
        SELECT * FROM j
        ON CONFLICT (dday, idappuser, idllm, txsource, nslot) DO UPDATE SET
          nprompts = t.nprompts + excluded.nprompts,
        nresponses = t.nresponses + excluded.nresponses,
        nfailed = t.nfailed + excluded.nfailed,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
        ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
          dtlast = greatest(t.dtlast, excluded.dtlast)
      )
      INSERT INTO chatbot_schema.usage_user_total AS t (idappuser, models, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast)
      SELECT idappuser, array_agg(DISTINCT idllm), sum(nprompts), sum(nresponses), sum(nfailed), sum(nprompt_tokens), sum(ncompletion_tokens), max(dtlast)
      FROM j GROUP BY 1
      ON CONFLICT (idappuser, txsource, nslot) DO UPDATE SET
        nprompts = t.nprompts + excluded.nprompts,
        nresponses = t.nresponses + excluded.nresponses,
        nfailed = t.nfailed + excluded.nfailed,
        nprompt_tokens = t.nprompt_tokens + excluded.nprompt_tokens,
        ncompletion_tokens = t.ncompletion_tokens + excluded.ncompletion_tokens,
        dtlast = greatest(t.dtlast, excluded.dtlast),
        models = ARRAY(SELECT DISTINCT unnest(t.models || excluded.models))
    `.execute(trx);
}
