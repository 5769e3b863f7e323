import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { HISTOGRAM_EDGES_S } from '../db/migrations/011-usage-rollups.ts';
import { percentileFromHistogram, sumHistograms } from './percentiles.ts';

/**
 * Every page query reads the daily rollups (migration 011), never the message history: their size grows with days ×
 * models and days × active users, not with messages. Only the per-chat drill-down reads raw rows, of one user.
 */

/** Where the use came from (migration 019): the chat pages, or the OpenAI-compatible API. */
export type UsageSource = 'web' | 'api';
export const USAGE_SOURCES: readonly UsageSource[] = ['web', 'api'];

export interface DaySpan {
  from: string | null;
  to: string | null;
  /** One source only; absent or null: both. */
  source?: UsageSource | null;
  /** Only the members of this group (its id); absent or null: everyone. Per-user rollups only (see modelDays). */
  group?: number | null;
}

const ofSource = (span: DaySpan): RawBuilder<boolean> => (span.source ? sql<boolean>`txsource = ${span.source}` : sql<boolean>`TRUE`);

/** The group's members, for a filter on a rollup with a user (`idappuser`); TRUE without a group. */
const ofGroup = (span: DaySpan): RawBuilder<boolean> =>
  span.group ? sql<boolean>`idappuser IN (SELECT gm.idappuser FROM chatbot_schema.user_group_member gm WHERE gm.idgroup = ${span.group})` : sql<boolean>`TRUE`;

const inSpan = (span: DaySpan): RawBuilder<boolean> =>
  span.from === null || span.to === null ? ofSource(span) : sql<boolean>`dday BETWEEN ${span.from}::date AND ${span.to}::date AND ${ofSource(span)}`;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/**
 * The user-side rows of a span: day × user × model rollups for a range of days, the all-time per-user totals for
 * all time (so "all" reads one row per user, not users × active days).
 */
const userRows = (span: DaySpan): RawBuilder<unknown> =>
  span.from === null || span.to === null
    ? sql`SELECT idappuser, txsource, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast FROM chatbot_schema.usage_user_total
          WHERE ${ofSource(span)} AND ${ofGroup(span)}`
    : sql`SELECT idappuser, txsource, nprompts, nresponses, nfailed, nprompt_tokens, ncompletion_tokens, dtlast FROM chatbot_schema.usage_day_user
          WHERE ${inSpan(span)} AND ${ofGroup(span)}`;

/** The model ids each of the users in `ids` (a subquery of idappuser) used in the span. */
const userModels = (span: DaySpan, ids: RawBuilder<unknown>): RawBuilder<unknown> =>
  span.from === null || span.to === null
    ? sql`SELECT idappuser, array_agg(DISTINCT m) AS models
          FROM chatbot_schema.usage_user_total, unnest(models) AS m WHERE ${ofSource(span)} AND idappuser IN (${ids}) GROUP BY idappuser`
    : sql`SELECT idappuser, array_agg(DISTINCT idllm) AS models FROM chatbot_schema.usage_day_user
          WHERE ${inSpan(span)} AND idappuser IN (${ids}) GROUP BY idappuser`;

/** The seed's first table: prompts per username, most first (ties by name so the page does not shuffle). */
export async function promptsPerUsername(db: Db, span: DaySpan, limit: number | null = null): Promise<{ username: string; prompts: number }[]> {
  const r = await sql<{ username: string; prompts: string }>`
    SELECT u.txusername AS username, sum(d.nprompts)::bigint AS prompts
    FROM (${userRows(span)}) d JOIN chatbot_schema.app_user u ON u.idappuser = d.idappuser
    GROUP BY u.txusername
    HAVING sum(d.nprompts) > 0
    ORDER BY prompts DESC, username
    ${limit === null ? sql`` : sql`LIMIT ${limit}`}`.execute(db);
  return r.rows.map((x) => ({ username: x.username, prompts: num(x.prompts) }));
}

/** The seed's second table: ROUND(AVG(tinf_end - tinf_start), 3) seconds per model short name, fastest first. */
export async function averageSecondsPerModel(db: Db, span: DaySpan): Promise<{ model: string; avgSeconds: string }[]> {
  if (span.group) return []; // timing has no user dimension: for all users only (docs/decisions/024)
  const r = await sql<{ model: string; avg_seconds: string }>`
    SELECT l.txshortname AS model, ROUND(sum(d.sum_inf_s) / sum(d.ntimed), 3)::text AS avg_seconds
    FROM chatbot_schema.usage_day_model d JOIN chatbot_schema.llm l ON l.idllm = d.idllm
    WHERE ${inSpan(span)}
    GROUP BY l.txshortname
    HAVING sum(d.ntimed) > 0
    ORDER BY ROUND(sum(d.sum_inf_s) / sum(d.ntimed), 3), model`.execute(db);
  return r.rows.map((x) => ({ model: x.model, avgSeconds: x.avg_seconds }));
}

export interface ModelStats {
  modelId: number;
  model: string;
  prompts: number;
  responses: number;
  complete: number;
  errors: number;
  stopped: number;
  interrupted: number;
  /**
   * Timing of the answers that did not fail (complete, or stopped by their user): the average (3 decimals, exact),
   * percentiles, time to first token and tokens per second. Null without such a timed answer.
   */
  avgSeconds: string | null;
  /** The average time of failed answers (error or interrupted), apart: a model failing fast is not a fast model. */
  failedAvgSeconds: string | null;
  failedTimed: number;
  p50Seconds: number | null;
  p95Seconds: number | null;
  medianTtftSeconds: number | null;
  tokensPerSecond: number | null;
  promptTokens: number;
  completionTokens: number;
}

interface ModelDayRow {
  dday: string;
  idllm: number;
  model: string;
  nprompts: number;
  nresponses: number;
  ncomplete: number;
  nerror: number;
  nstopped: number;
  ninterrupted: number;
  ntimed: number;
  sum_inf_s: string;
  nttft: number;
  ntoken_timed_tokens: string;
  sum_token_gen_s: string;
  nprompt_tokens: string;
  ncompletion_tokens: string;
  hist_inf: number[];
  hist_ttft: number[];
  /** The failed answers' share of the timing columns above (migration 017). */
  ntimed_failed: number;
  sum_inf_failed_s: string;
  ntoken_timed_failed_tokens: string;
  sum_token_gen_failed_s: string;
  hist_inf_failed: number[];
  hist_ttft_failed: number[];
}

/** The day × model rows of a span (a few hundred at most for a year of five models); everything per model sums them. */
export type Bucket = 'day' | 'week' | 'total';

const BUCKET_COUNT = HISTOGRAM_EDGES_S.length + 1;
/** Element-wise sum of a histogram column, written out by subscript: several times faster than unnest and regroup. */
const histSum = (col: 'hist_inf' | 'hist_ttft' | 'hist_inf_failed' | 'hist_ttft_failed') =>
  sql.raw(`array_to_string(ARRAY[${Array.from({ length: BUCKET_COUNT }, (_, i) => `sum(d.${col}[${i + 1}])`).join(', ')}], ',')`);
const bucketOf: Record<Bucket, RawBuilder<string>> = {
  day: sql<string>`to_char(d.dday, 'YYYY-MM-DD')`,
  // ISO weeks start on Monday; the label is the Monday.
  week: sql<string>`to_char(date_trunc('week', d.dday), 'YYYY-MM-DD')`,
  total: sql<string>`''`,
};

/**
 * The day × model rollups of a span summed per model and `bucket` (a day, an ISO week, or the whole span): at most a
 * few hundred rows whatever the history, and the summing happens in the database.
 */
export async function modelDays(db: Db, span: DaySpan, bucket: Bucket = 'day'): Promise<ModelDayRow[]> {
  if (span.group) return groupModelDays(db, span, bucket);
  // The histograms travel as text: pg's generic array parser costs more than the rest of the page for a year of days.
  type Hists = 'hist_inf' | 'hist_ttft' | 'hist_inf_failed' | 'hist_ttft_failed';
  const r = await sql<Omit<ModelDayRow, Hists> & Record<Hists, string>>`
    SELECT ${bucketOf[bucket]} AS dday, d.idllm, coalesce(min(l.txshortname), '(deleted model ' || d.idllm || ')') AS model,
      sum(d.nprompts)::int AS nprompts, sum(d.nresponses)::int AS nresponses, sum(d.ncomplete)::int AS ncomplete, sum(d.nerror)::int AS nerror,
      sum(d.nstopped)::int AS nstopped, sum(d.ninterrupted)::int AS ninterrupted, sum(d.ntimed)::int AS ntimed, sum(d.sum_inf_s)::text AS sum_inf_s,
      sum(d.nttft)::int AS nttft, sum(d.ntoken_timed_tokens)::text AS ntoken_timed_tokens, sum(d.sum_token_gen_s)::text AS sum_token_gen_s,
      sum(d.nprompt_tokens)::text AS nprompt_tokens, sum(d.ncompletion_tokens)::text AS ncompletion_tokens,
      ${histSum('hist_inf')} AS hist_inf, ${histSum('hist_ttft')} AS hist_ttft,
      sum(d.ntimed_failed)::int AS ntimed_failed, sum(d.sum_inf_failed_s)::text AS sum_inf_failed_s,
      sum(d.ntoken_timed_failed_tokens)::text AS ntoken_timed_failed_tokens, sum(d.sum_token_gen_failed_s)::text AS sum_token_gen_failed_s,
      ${histSum('hist_inf_failed')} AS hist_inf_failed, ${histSum('hist_ttft_failed')} AS hist_ttft_failed
    FROM chatbot_schema.usage_day_model d LEFT JOIN chatbot_schema.llm l ON l.idllm = d.idllm
    WHERE ${inSpan(span)}
    GROUP BY 1, d.idllm
    ORDER BY 1, d.idllm`.execute(db);
  const ints = (text: string) => text.split(',').map(Number);
  return r.rows.map((x) => ({
    ...x,
    hist_inf: ints(x.hist_inf),
    hist_ttft: ints(x.hist_ttft),
    hist_inf_failed: ints(x.hist_inf_failed),
    hist_ttft_failed: ints(x.hist_ttft_failed),
  }));
}

const emptyHistogram = (): number[] => Array(BUCKET_COUNT).fill(0);

/**
 * modelDays for a group's members, from the day × user × model rollups: prompts, answers, failed answers (as errors:
 * the per-user rows do not tell errors from interruptions) and tokens. The timing columns stay empty — the
 * histograms are per day × model only (docs/decisions/024) — so every timing figure of a group reads as none.
 */
async function groupModelDays(db: Db, span: DaySpan, bucket: Bucket): Promise<ModelDayRow[]> {
  const r = await sql<{
    dday: string;
    idllm: number;
    model: string;
    nprompts: number;
    nresponses: number;
    nfailed: number;
    nprompt_tokens: string;
    ncompletion_tokens: string;
  }>`
    SELECT ${bucketOf[bucket]} AS dday, d.idllm, coalesce(min(l.txshortname), '(deleted model ' || d.idllm || ')') AS model,
      sum(d.nprompts)::int AS nprompts, sum(d.nresponses)::int AS nresponses, sum(d.nfailed)::int AS nfailed,
      sum(d.nprompt_tokens)::text AS nprompt_tokens, sum(d.ncompletion_tokens)::text AS ncompletion_tokens
    FROM chatbot_schema.usage_day_user d LEFT JOIN chatbot_schema.llm l ON l.idllm = d.idllm
    WHERE ${inSpan(span)} AND ${ofGroup(span)}
    GROUP BY 1, d.idllm
    ORDER BY 1, d.idllm`.execute(db);
  return r.rows.map((x) => ({
    ...x,
    ncomplete: 0,
    nerror: x.nfailed,
    nstopped: 0,
    ninterrupted: 0,
    ntimed: 0,
    sum_inf_s: '0',
    nttft: 0,
    ntoken_timed_tokens: '0',
    sum_token_gen_s: '0',
    hist_inf: emptyHistogram(),
    hist_ttft: emptyHistogram(),
    ntimed_failed: 0,
    sum_inf_failed_s: '0',
    ntoken_timed_failed_tokens: '0',
    sum_token_gen_failed_s: '0',
    hist_inf_failed: emptyHistogram(),
    hist_ttft_failed: emptyHistogram(),
  }));
}

/** A histogram of the answers that did not fail: all of them minus the failed ones, bucket by bucket. */
export function notFailed(all: number[], failed: number[]): number[] {
  return all.map((n, i) => n - (failed[i] ?? 0));
}

/**
 * Per model, summed over the span's days. Timing (average, percentiles from the summed histograms, first token,
 * tokens per second) is of the answers that did not fail; failed answers get their own average. Fastest first; a
 * model without an answer that did not fail comes last.
 */
export function summarizeModels(days: ModelDayRow[]): ModelStats[] {
  const byModel = new Map<number, ModelDayRow[]>();
  for (const d of days) {
    const list = byModel.get(d.idllm);
    if (list) list.push(d);
    else byModel.set(d.idllm, [d]);
  }
  const out: ModelStats[] = [];
  for (const [modelId, rows] of byModel) {
    const sum = (f: (r: ModelDayRow) => unknown) => rows.reduce((a, r) => a + num(f(r)), 0);
    const failedTimed = sum((r) => r.ntimed_failed);
    const okTimed = sum((r) => r.ntimed) - failedTimed;
    const genSeconds = sum((r) => r.sum_token_gen_s) - sum((r) => r.sum_token_gen_failed_s);
    const hist = notFailed(sumHistograms(rows.map((r) => r.hist_inf)), sumHistograms(rows.map((r) => r.hist_inf_failed)));
    const ttft = notFailed(sumHistograms(rows.map((r) => r.hist_ttft)), sumHistograms(rows.map((r) => r.hist_ttft_failed)));
    out.push({
      modelId,
      model: rows[0]?.model ?? '',
      prompts: sum((r) => r.nprompts),
      responses: sum((r) => r.nresponses),
      complete: sum((r) => r.ncomplete),
      errors: sum((r) => r.nerror),
      stopped: sum((r) => r.nstopped),
      interrupted: sum((r) => r.ninterrupted),
      avgSeconds: okTimed > 0 ? averageOf([...rows.map((r) => r.sum_inf_s), ...rows.map((r) => negate(r.sum_inf_failed_s))], okTimed) : null,
      failedAvgSeconds:
        failedTimed > 0
          ? averageOf(
              rows.map((r) => r.sum_inf_failed_s),
              failedTimed,
            )
          : null,
      failedTimed,
      p50Seconds: percentileFromHistogram(hist, HISTOGRAM_EDGES_S, 0.5),
      p95Seconds: percentileFromHistogram(hist, HISTOGRAM_EDGES_S, 0.95),
      medianTtftSeconds: percentileFromHistogram(ttft, HISTOGRAM_EDGES_S, 0.5),
      tokensPerSecond: genSeconds > 0 ? (sum((r) => r.ntoken_timed_tokens) - sum((r) => r.ntoken_timed_failed_tokens)) / genSeconds : null,
      promptTokens: sum((r) => r.nprompt_tokens),
      completionTokens: sum((r) => r.ncompletion_tokens),
    });
  }
  return out.sort(
    (a, b) =>
      (a.avgSeconds === null ? 1 : 0) - (b.avgSeconds === null ? 1 : 0) || Number(a.avgSeconds) - Number(b.avgSeconds) || a.model.localeCompare(b.model),
  );
}

const negate = (decimal: string | number): string => {
  const text = String(decimal);
  return text.startsWith('-') ? text.slice(1) : `-${text}`;
};

/**
 * The seed's ROUND(AVG(seconds), 3) from exact decimal sums: summed as scaled integers (BigInt, micro-seconds are
 * exact since timestamptz has microsecond precision), divided and rounded half away from zero as numeric ROUND does.
 */
export function averageOf(sums: string[], count: number): string {
  const SCALE = 6;
  const micros = sums.reduce((a, s) => a + toScaled(s, SCALE), 0n);
  // ROUND(x / n, 3): scale to 3 decimals, round half away from zero.
  const n = BigInt(count);
  const num1000 = micros * 1000n;
  const den = n * 10n ** BigInt(SCALE);
  const neg = num1000 < 0n;
  const abs = neg ? -num1000 : num1000;
  let q = abs / den;
  if ((abs % den) * 2n >= den) q += 1n;
  const signed = neg ? -q : q;
  const s = (signed < 0n ? -signed : signed).toString().padStart(4, '0');
  return `${signed < 0n ? '-' : ''}${s.slice(0, -3)}.${s.slice(-3)}`;
}

function toScaled(value: string, scale: number): bigint {
  const neg = value.startsWith('-');
  const [int = '0', frac = ''] = (neg ? value.slice(1) : value).split('.');
  const v = BigInt(int) * 10n ** BigInt(scale) + BigInt((frac + '0'.repeat(scale)).slice(0, scale) || '0');
  return neg ? -v : v;
}

export interface Totals {
  prompts: number;
  answers: number;
  activeUsers: number;
  failed: number;
}

/** Prompts, answers, users who sent a prompt, and failed answers (error or interrupted) of a span. */
export async function totals(db: Db, span: DaySpan): Promise<Totals> {
  const r = await sql<{ prompts: string; answers: string; users: string; failed: string }>`
    SELECT coalesce(sum(nprompts), 0)::text AS prompts, coalesce(sum(nresponses), 0)::text AS answers,
      count(DISTINCT idappuser) FILTER (WHERE nprompts > 0)::text AS users, coalesce(sum(nfailed), 0)::text AS failed
    FROM (${userRows(span)}) d`.execute(db);
  const row = r.rows[0];
  return { prompts: num(row?.prompts), answers: num(row?.answers), activeUsers: num(row?.users), failed: num(row?.failed) };
}

export interface UserStats {
  userId: number;
  username: string;
  prompts: number;
  answers: number;
  models: string[];
  promptTokens: number;
  completionTokens: number;
  lastActivity: Date | null;
}

const perUser = (span: DaySpan) => sql`
  SELECT d.idappuser, sum(d.nprompts) AS prompts, sum(d.nresponses) AS answers, sum(d.nfailed) AS failed,
    sum(d.nprompt_tokens) AS pt, sum(d.ncompletion_tokens) AS ct, max(d.dtlast) AS last
  FROM (${userRows(span)}) d
  GROUP BY d.idappuser`;

/** The JSON of the users of `top` (a CTE name with per's columns and username), in order, with their models' names. */
const usersJson = (span: DaySpan, top: string) => sql`
  SELECT coalesce(json_agg(json_build_object('idappuser', t.idappuser, 'username', t.username, 'prompts', t.prompts, 'answers', t.answers,
      'models', ARRAY(SELECT coalesce(l.txshortname, '#' || x) FROM unnest(m.models) x LEFT JOIN chatbot_schema.llm l ON l.idllm = x ORDER BY 1),
      'pt', t.pt, 'ct', t.ct, 'last', t.last) ORDER BY t.prompts DESC, t.username, t.idappuser), '[]'::json)
  FROM ${sql.table(top)} t LEFT JOIN (${userModels(span, sql`SELECT idappuser FROM ${sql.table(top)}`)}) m ON m.idappuser = t.idappuser`;

interface UserJson {
  idappuser: number;
  username: string | null;
  prompts: number | string;
  answers: number | string;
  models: string[];
  pt: number | string;
  ct: number | string;
  last: string | null;
}

const toUserStats = (x: UserJson): UserStats => ({
  userId: x.idappuser,
  username: x.username ?? `(deleted user ${x.idappuser})`,
  prompts: num(x.prompts),
  answers: num(x.answers),
  models: x.models,
  promptTokens: num(x.pt),
  completionTokens: num(x.ct),
  lastActivity: x.last === null ? null : new Date(x.last),
});

/** Per user of the span, most prompts first; `limit` for the page (the CSV has everyone). */
export async function userStats(db: Db, span: DaySpan, limit: number | null): Promise<{ rows: UserStats[]; total: number }> {
  const r = await sql<{ users: UserJson[] }>`
    WITH top AS MATERIALIZED (
      SELECT per.*, u.txusername AS username FROM (${perUser(span)}) per LEFT JOIN chatbot_schema.app_user u ON u.idappuser = per.idappuser
      ORDER BY per.prompts DESC, u.txusername, per.idappuser ${limit === null ? sql`` : sql`LIMIT ${limit}`})
    SELECT (${usersJson(span, 'top')}) AS users`.execute(db);
  const rows = (r.rows[0]?.users ?? []).map(toUserStats);
  return { total: rows.length, rows };
}

export interface UserOverview {
  totals: Totals;
  users: { rows: UserStats[]; total: number };
  promptsPerUser: { username: string; prompts: number }[];
  usernames: number;
}

/**
 * Everything the page shows per user, in one statement over one read of the span's user rows: the totals, the
 * first `limit` users, and the seed's prompts per username (its first `limit` rows, and how many there are).
 */
export async function userOverview(db: Db, span: DaySpan, limit: number): Promise<UserOverview> {
  const r = await sql<{
    totals: Record<string, number | string>;
    users: UserJson[];
    by_name: { username: string; prompts: number | string }[];
    nusers: string;
    nnames: string;
  }>`
    WITH per AS MATERIALIZED (${perUser(span)}),
    named AS MATERIALIZED (SELECT per.*, u.txusername AS username FROM per LEFT JOIN chatbot_schema.app_user u ON u.idappuser = per.idappuser),
    top AS MATERIALIZED (SELECT * FROM named ORDER BY prompts DESC, username, idappuser LIMIT ${limit}),
    by_name AS MATERIALIZED (SELECT username, sum(prompts) AS prompts FROM named WHERE username IS NOT NULL GROUP BY username HAVING sum(prompts) > 0)
    SELECT
      (SELECT json_build_object('prompts', coalesce(sum(prompts), 0), 'answers', coalesce(sum(answers), 0),
        'users', count(*) FILTER (WHERE prompts > 0), 'failed', coalesce(sum(failed), 0)) FROM per) AS totals,
      (SELECT count(*) FROM per)::text AS nusers,
      (${usersJson(span, 'top')}) AS users,
      (SELECT coalesce(json_agg(t ORDER BY t.prompts DESC, t.username), '[]'::json) FROM (
        SELECT username, prompts FROM by_name ORDER BY prompts DESC, username LIMIT ${limit}) t) AS by_name,
      (SELECT count(*) FROM by_name)::text AS nnames`.execute(db);
  const row = r.rows[0];
  const t = row?.totals ?? {};
  return {
    totals: { prompts: num(t.prompts), answers: num(t.answers), activeUsers: num(t.users), failed: num(t.failed) },
    users: { rows: (row?.users ?? []).map(toUserStats), total: num(row?.nusers) },
    promptsPerUser: (row?.by_name ?? []).map((x) => ({ username: x.username, prompts: num(x.prompts) })),
    usernames: num(row?.nnames),
  };
}

export interface ChatStats {
  chatId: number;
  title: string | null;
  model: string | null;
  prompts: number;
  answers: number;
  /** Answers that ended in an error or were interrupted. */
  failed: number;
  /** The average time of the answers that did not fail, 3 decimals. */
  avgSeconds: string | null;
}

/**
 * One user's chats with activity in the span (the seed's "or per chat"), from the raw rows: bounded by that user's
 * history, over chat_user_updated_idx and message_chat_created_idx. Deleted chats are gone from this list (their
 * counts stay in the rollups).
 */
export async function chatStats(db: Db, userId: number, timeZone: string, span: DaySpan): Promise<ChatStats[]> {
  const within = (col: RawBuilder<unknown>) =>
    span.from === null || span.to === null
      ? sql<boolean>`TRUE`
      : sql<boolean>`(${col} AT TIME ZONE ${timeZone})::date BETWEEN ${span.from}::date AND ${span.to}::date`;
  const r = await sql<{
    idchat: number;
    title: string | null;
    model: string | null;
    prompts: string;
    answers: string;
    failed: string;
    avg_seconds: string | null;
  }>`
    SELECT c.idchat, c.txtitle AS title, l.txshortname AS model,
      (SELECT count(*) FROM chatbot_schema.message m WHERE m.idchat = c.idchat AND NOT m.is_imported AND ${within(sql`m.dtcreated`)})::text AS prompts,
      x.answers::text AS answers, x.failed::text AS failed, x.avg_seconds::text AS avg_seconds
    FROM chatbot_schema.chat c
    LEFT JOIN chatbot_schema.llm l ON l.idllm = c.idllm
    CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE r.txstatus IN ('complete', 'error', 'stopped', 'interrupted')) AS answers,
        count(*) FILTER (WHERE r.txstatus IN ('error', 'interrupted')) AS failed,
        ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start))) FILTER (WHERE r.txstatus IN ('complete', 'stopped')), 3) AS avg_seconds
      FROM chatbot_schema.response r JOIN chatbot_schema.message m ON m.idmessage = r.idmessage
      WHERE r.idchat = c.idchat AND NOT r.is_imported AND ${within(sql`coalesce(r.tinf_start, m.dtcreated)`)} -- imported rows are not usage (029)
    ) x
    WHERE c.idappuser = ${userId}
    ORDER BY c.dtupdated DESC, c.idchat DESC`.execute(db);
  return r.rows
    .map((x) => ({
      chatId: x.idchat,
      title: x.title,
      model: x.model,
      prompts: num(x.prompts),
      answers: num(x.answers),
      failed: num(x.failed),
      avgSeconds: x.avg_seconds,
    }))
    .filter((c) => c.prompts > 0 || c.answers > 0);
}

export async function findUsername(db: Db, userId: number): Promise<string | null> {
  const r = await sql<{ txusername: string }>`SELECT txusername FROM chatbot_schema.app_user WHERE idappuser = ${userId}`.execute(db);
  return r.rows[0]?.txusername ?? null;
}

/** Use per source in a span: the page's "Web and API" table. */
export interface SourceTotals {
  source: UsageSource;
  prompts: number;
  answers: number;
  failed: number;
  promptTokens: number;
  completionTokens: number;
}

/** Prompts, answers and tokens of each source in the span (both, whatever span.source says: this is the split). */
export async function sourceTotals(db: Db, span: DaySpan, userId: number | null = null): Promise<SourceTotals[]> {
  const both = { ...span, source: null };
  const r = await sql<{ txsource: UsageSource; p: string; a: string; f: string; pt: string; ct: string }>`
    SELECT d.txsource, sum(d.nprompts) AS p, sum(d.nresponses) AS a, sum(d.nfailed) AS f, sum(d.nprompt_tokens) AS pt, sum(d.ncompletion_tokens) AS ct
    FROM (${userRows(both)}) d ${userId === null ? sql`` : sql`WHERE d.idappuser = ${userId}`}
    GROUP BY d.txsource`.execute(db);
  return USAGE_SOURCES.map((source) => {
    const x = r.rows.find((row) => row.txsource === source);
    return { source, prompts: num(x?.p), answers: num(x?.a), failed: num(x?.f), promptTokens: num(x?.pt), completionTokens: num(x?.ct) };
  });
}

export interface OwnUsageRow {
  day: string;
  source: UsageSource;
  model: string;
  prompts: number;
  answers: number;
  promptTokens: number;
  completionTokens: number;
}

/** One user's own rollup rows: by day and model, newest first. Only ever called with the signed-in user's id. */
export async function ownUsage(db: Db, userId: number, span: DaySpan): Promise<OwnUsageRow[]> {
  const r = await sql<{ day: string; source: UsageSource; model: string; prompts: number; answers: number; pt: string; ct: string }>`
    SELECT to_char(d.dday, 'YYYY-MM-DD') AS day, d.txsource AS source, coalesce(min(l.txshortname), '(deleted model)') AS model, sum(d.nprompts)::int AS prompts,
      sum(d.nresponses)::int AS answers, sum(d.nprompt_tokens)::text AS pt, sum(d.ncompletion_tokens)::text AS ct
    FROM chatbot_schema.usage_day_user d LEFT JOIN chatbot_schema.llm l ON l.idllm = d.idllm
    WHERE d.idappuser = ${userId} AND ${inSpan(span)}
    GROUP BY d.dday, d.idllm, d.txsource -- the slot rows of a key (migration 030)
    ORDER BY d.dday DESC, model, d.txsource DESC`.execute(db);
  return r.rows.map((x) => ({
    day: x.day,
    source: x.source,
    model: x.model,
    prompts: x.prompts,
    answers: x.answers,
    promptTokens: num(x.pt),
    completionTokens: num(x.ct),
  }));
}
