import { type Expression, type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';

/**
 * Usage limits (migration 020, docs/decisions/016-groups-and-limits.md), for every way a prompt reaches a model:
 * admitPrompt decides access and limits and reserves in one statement, before the model is called; settleUsage
 * replaces the reservation with what was used once the answer is over. The chat's answers are admitted inside
 * begin_answer and settled by a trigger when they end; another caller (the OpenAI-compatible API) calls these two.
 */

export const LIMIT_NAMES = ['prompts_per_day', 'tokens_per_day', 'tokens_per_month'] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** A limit's value; null: unlimited (or, for a group or a user's own setting, not set). */
export type Limits = Record<LimitName, number | null>;

export interface LimitRefusal {
  limit: LimitName;
  value: number;
  resetsAt: Date;
}

/** What is left after a prompt was admitted; null for a limit that is not set. */
export interface Remaining {
  promptsToday: number | null;
  tokensToday: number | null;
  tokensThisMonth: number | null;
}

export type Admission =
  /** usageDay null: no limit applies, nothing was reserved (migration 031) and there is nothing to settle. */
  | { outcome: 'ok'; usageDay: string | null; reservedTokens: number; remaining: Remaining }
  | { outcome: 'forbidden' | 'not_found' }
  | { outcome: 'over_limit'; refusal: LimitRefusal };

/**
 * About 4 characters a token (OpenAI's rule of thumb): the estimate reserved before the model answers (settled with
 * the real count after), and the API's count when the upstream sends no usage.
 */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

interface AdmitRow {
  outcome: string;
  limit_name: LimitName | null;
  limit_value: number | null;
  resets_at: Date | null;
  prompts_left: number | null;
  tokens_left_day: number | null;
  tokens_left_month: number | null;
}

export function refusalFrom(row: Pick<AdmitRow, 'limit_name' | 'limit_value' | 'resets_at'>): LimitRefusal {
  if (!row.limit_name || row.limit_value === null || !row.resets_at) throw new Error('a refusal without its limit');
  return { limit: row.limit_name, value: Number(row.limit_value), resetsAt: row.resets_at };
}

export function remainingFrom(row: Pick<AdmitRow, 'prompts_left' | 'tokens_left_day' | 'tokens_left_month'>): Remaining {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return { promptsToday: n(row.prompts_left), tokensToday: n(row.tokens_left_day), tokensThisMonth: n(row.tokens_left_month) };
}

/**
 * May `userId` send a prompt of about `estimatedTokens` tokens to model `modelId` now? 'ok' has reserved one prompt
 * and the tokens on today's and this month's counters (pass its usageDay and reservedTokens to settleUsage later);
 * 'forbidden': the model is not for this user; 'over_limit': which limit and when it resets. One statement, deciding
 * under the lock of the user's counter rows, so simultaneous prompts (any process, any source) are counted exactly.
 */
export async function admitPrompt(db: Db, input: { userId: number; modelId: number; estimatedTokens: number }): Promise<Admission> {
  const { rows } = await sql<AdmitRow & { usage_day: string | null }>`
    SELECT outcome, limit_name, limit_value, resets_at, usage_day::text AS usage_day, prompts_left, tokens_left_day, tokens_left_month
    FROM chatbot_schema.admit_prompt(${input.userId}, ${input.modelId}, ${input.estimatedTokens})`.execute(db);
  const row = rows[0];
  if (!row) throw new Error('admit_prompt returned no row');
  if (row.outcome === 'ok') {
    const reservedTokens = row.usage_day === null ? 0 : input.estimatedTokens;
    return { outcome: 'ok', usageDay: row.usage_day, reservedTokens, remaining: remainingFrom(row) };
  }
  if (row.outcome === 'over_limit') return { outcome: 'over_limit', refusal: refusalFrom(row) };
  return { outcome: row.outcome === 'forbidden' ? 'forbidden' : 'not_found' };
}

/**
 * Ends a reservation: the counters get `tokens` (prompt + completion, as the model server reported them) instead of
 * the reserved estimate; a failed answer (`failed`) gives its prompt back (docs/decisions/016).
 */
export async function settleUsage(
  db: Db,
  input: { userId: number; usageDay: string | null; reservedTokens: number; tokens: number; failed: boolean },
): Promise<void> {
  if (input.usageDay === null) return; // admitted with no limit: nothing was reserved
  await sql`SELECT chatbot_schema.settle_usage(${input.userId}, ${input.usageDay}::date, ${input.reservedTokens}, ${input.tokens}, ${input.failed})`.execute(
    db,
  );
}

export interface UsageStatus {
  limits: Limits;
  used: { promptsToday: number; tokensToday: number; tokensThisMonth: number };
  /** When today's and this month's counts start again. */
  dayResetsAt: Date;
  monthResetsAt: Date;
}

/**
 * A user's limits as they apply now and what they used of them (reservations of answers still running included), as
 * one SQL expression (a JSON object), so a page can read it in the statement it already makes (the chat page: one).
 */
export function selectUsageStatus(userId: Expression<number> | number): RawBuilder<unknown> {
  // Before the period's first prompt under a limit there is no counter row: it will start from the statistics (031).
  const counter = (period: 'day' | 'month', column: 'nprompts' | 'ntokens', start: RawBuilder<unknown>) =>
    sql`coalesce((SELECT c.${sql.raw(column)} FROM chatbot_schema.usage_counter c WHERE c.idappuser = ${userId} AND c.txperiod = ${period} AND c.dstart = ${start}),
      (SELECT s.${sql.raw(column)} FROM chatbot_schema.usage_counter_seed(${userId}, ${period}, ${start}) s))`;
  return sql`(
    SELECT json_build_object(
      'limits', json_build_object('prompts_per_day', l.prompts_per_day, 'tokens_per_day', l.tokens_per_day, 'tokens_per_month', l.tokens_per_month),
      'used', json_build_object(
        'promptsToday', ${counter('day', 'nprompts', sql`p.day`)},
        'tokensToday', ${counter('day', 'ntokens', sql`p.day`)},
        'tokensThisMonth', ${counter('month', 'ntokens', sql`date_trunc('month', p.day)::date`)}),
      'dayResetsAt', (p.day + 1)::timestamp AT TIME ZONE p.tz,
      'monthResetsAt', (date_trunc('month', p.day) + interval '1 month')::timestamp AT TIME ZONE p.tz)
    FROM (SELECT s.txtimezone AS tz, (now() AT TIME ZONE s.txtimezone)::date AS day FROM chatbot_schema.usage_rollup_state s) p,
         chatbot_schema.effective_limits(${userId}) l)`;
}

/** selectUsageStatus's JSON, typed (timestamps arrive as strings, bigints as numbers). */
export function usageStatusFromJson(json: unknown): UsageStatus {
  const j = json as { limits: Limits; used: UsageStatus['used']; dayResetsAt: string; monthResetsAt: string };
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    limits: { prompts_per_day: n(j.limits.prompts_per_day), tokens_per_day: n(j.limits.tokens_per_day), tokens_per_month: n(j.limits.tokens_per_month) },
    used: { promptsToday: Number(j.used.promptsToday), tokensToday: Number(j.used.tokensToday), tokensThisMonth: Number(j.used.tokensThisMonth) },
    dayResetsAt: new Date(j.dayResetsAt),
    monthResetsAt: new Date(j.monthResetsAt),
  };
}

export async function usageStatus(db: Db, userId: number): Promise<UsageStatus> {
  const { rows } = await sql<{ s: unknown }>`SELECT ${selectUsageStatus(userId)} AS s`.execute(db);
  return usageStatusFromJson(rows[0]?.s);
}

const LIMIT_WORDS: Record<LimitName, (n: number) => string> = {
  prompts_per_day: (n) => `${n.toLocaleString('en-US')} ${n === 1 ? 'prompt' : 'prompts'} a day`,
  tokens_per_day: (n) => `${n.toLocaleString('en-US')} tokens a day`,
  tokens_per_month: (n) => `${n.toLocaleString('en-US')} tokens a month`,
};

export const LIMIT_LABELS: Record<LimitName, string> = {
  prompts_per_day: 'Prompts per day',
  tokens_per_day: 'Tokens per day',
  tokens_per_month: 'Tokens per month',
};

export function describeLimit(limit: LimitName, value: number): string {
  return LIMIT_WORDS[limit](value);
}

/** "8 December 2026 at 00:00 (Europe/Paris)": when a count starts again, in the zone the days are counted in. */
export function formatResetTime(at: Date, timeZone: string): string {
  const text = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(at);
  return `${text} (${timeZone})`;
}

/** The 429's message: which limit, and when it resets. */
export function limitMessage(refusal: LimitRefusal, timeZone: string): string {
  return `You have reached your limit of ${describeLimit(refusal.limit, refusal.value)}. It resets on ${formatResetTime(refusal.resetsAt, timeZone)}.`;
}

/** Seconds until the limit resets (Retry-After), at least 1. */
export function retryAfterSeconds(refusal: LimitRefusal, now = new Date()): number {
  return Math.max(1, Math.ceil((refusal.resetsAt.getTime() - now.getTime()) / 1000));
}

/**
 * What the chat composer says about the limits: nothing while more than 10 % of every limit is left; how much is
 * left once under 10 %; which limit is reached and when it resets once one is.
 */
export function usageNotice(status: UsageStatus, timeZone: string): { reached: boolean; text: string } | null {
  const { limits, used } = status;
  const checks: Array<{ limit: LimitName; used: number; resetsAt: Date; left: (n: number) => string }> = [
    { limit: 'prompts_per_day', used: used.promptsToday, resetsAt: status.dayResetsAt, left: (n) => `${n} ${n === 1 ? 'prompt' : 'prompts'} left today` },
    { limit: 'tokens_per_day', used: used.tokensToday, resetsAt: status.dayResetsAt, left: (n) => `${n.toLocaleString('en-US')} tokens left today` },
    {
      limit: 'tokens_per_month',
      used: used.tokensThisMonth,
      resetsAt: status.monthResetsAt,
      left: (n) => `${n.toLocaleString('en-US')} tokens left this month`,
    },
  ];
  let low: string | null = null;
  for (const c of checks) {
    const value = limits[c.limit];
    if (value === null) continue;
    const left = value - c.used;
    if (left <= 0) return { reached: true, text: limitMessage({ limit: c.limit, value, resetsAt: c.resetsAt }, timeZone) };
    if (low === null && left < value * 0.1) low = `${c.left(left)} (your limit: ${describeLimit(c.limit, value)}).`;
  }
  return low === null ? null : { reached: false, text: low };
}
