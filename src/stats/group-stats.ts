import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { findGroup, type GroupSummary } from '../groups/group-queries.ts';
import { LIMIT_NAMES, type LimitName } from '../groups/usage-limits.ts';
import { BadRequestError, NotFoundError } from '../http/errors.ts';

/**
 * /admin/stats?group=<id> (issue 19): the page's figures for one group's members, and their use against the group's
 * limits. A limit applies to each member on their own (docs/decisions/016), so "against the limit" is per member:
 * how much the busiest one used, and how many reached it.
 */

/** The group of `?group=`: absent or empty means everyone; anything but one known group's number is refused. */
export async function parseGroupParam(db: Db, value: unknown): Promise<GroupSummary | null> {
  if (value === undefined || value === '') return null;
  if (typeof value !== 'string') throw new BadRequestError('Give group once.');
  if (!/^[1-9]\d{0,8}$/.test(value)) throw new BadRequestError("group must be a group's number (from the group picker).");
  const group = await findGroup(db, Number(value));
  if (!group) throw new NotFoundError('This group does not exist.');
  return group;
}

/** Every group, by name: the page's group picker. */
export async function groupNames(db: Db): Promise<Array<{ id: number; name: string }>> {
  const r = await sql<{ id: number; name: string }>`
    SELECT idgroup AS id, txname AS name FROM chatbot_schema.user_group ORDER BY lower(txname), idgroup`.execute(db);
  return r.rows;
}

export interface GroupLimitUsage {
  limit: LimitName;
  /** The group's value; null: the group sets none (its members' use is still shown). */
  value: number | null;
  /** The members' use together, today or this month. */
  total: number;
  /** The most one member used. */
  busiest: number;
  /** Members at or over the group's value. */
  reached: number;
}

export interface GroupUsage {
  members: number;
  /** Members who sent a prompt today. */
  activeToday: number;
  limits: GroupLimitUsage[];
}

/**
 * Today's and this month's use of each member (days and months in STATS_TIMEZONE, web and API together, from the
 * per-user rollups), against the group's limits. One statement; it reads this month's rows of the members only.
 */
export async function groupUsage(db: Db, group: GroupSummary): Promise<GroupUsage> {
  const limit = (name: LimitName) => group.limits[name];
  const r = await sql<Record<string, string | null>>`
    WITH p AS (SELECT chatbot_schema.usage_day(now()) AS today),
    mem AS (SELECT gm.idappuser FROM chatbot_schema.user_group_member gm WHERE gm.idgroup = ${group.id}),
    per AS (
      SELECT d.idappuser,
        coalesce(sum(d.nprompts) FILTER (WHERE d.dday = p.today), 0) AS prompts_per_day,
        coalesce(sum(d.nprompt_tokens + d.ncompletion_tokens) FILTER (WHERE d.dday = p.today), 0) AS tokens_per_day,
        sum(d.nprompt_tokens + d.ncompletion_tokens) AS tokens_per_month
      FROM chatbot_schema.usage_day_user d, p
      WHERE d.dday >= date_trunc('month', p.today)::date AND d.dday <= p.today AND d.idappuser IN (SELECT idappuser FROM mem)
      GROUP BY d.idappuser
    )
    SELECT (SELECT count(*) FROM mem)::text AS members, (count(*) FILTER (WHERE prompts_per_day > 0))::text AS active_today,
      ${sql.join(
        LIMIT_NAMES.map(
          (n) => sql`coalesce(sum(${sql.ref(n)}), 0)::text AS ${sql.ref(`${n}_total`)}, coalesce(max(${sql.ref(n)}), 0)::text AS ${sql.ref(`${n}_busiest`)},
            (count(*) FILTER (WHERE ${limit(n)}::bigint IS NOT NULL AND ${sql.ref(n)} >= ${limit(n)}::bigint))::text AS ${sql.ref(`${n}_reached`)}`,
        ),
      )}
    FROM per`.execute(db);
  const row = r.rows[0] ?? {};
  const num = (key: string) => Number(row[key] ?? 0);
  return {
    members: num('members'),
    activeToday: num('active_today'),
    limits: LIMIT_NAMES.map((n) => ({ limit: n, value: limit(n), total: num(`${n}_total`), busiest: num(`${n}_busiest`), reached: num(`${n}_reached`) })),
  };
}
