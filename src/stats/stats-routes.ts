import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireAdmin, requireUser } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import { CATCH_UP_ADOPTED_ANSWERS, catchUpPercent } from '../db/catch-up.ts';
import type { Db } from '../db/database.ts';
import { HISTOGRAM_EDGES_S, usageBackfillPercent } from '../db/migrations/011-usage-rollups.ts';
import { listUserGroups } from '../groups/group-queries.ts';
import { usageStatus } from '../groups/usage-limits.ts';
import { ownLimitsSection } from '../groups/usage-limits-views.ts';
import { BadRequestError, NotFoundError } from '../http/errors.ts';
import { pathId } from '../http/validation.ts';
import { html } from '../views/html.ts';
import type { PageOptions } from '../views/layout.ts';
import type { LineChart } from './charts.ts';
import { type Cell, toCsv } from './csv.ts';
import { secondsFigure, tokensPerSecondFigure } from './figures.ts';
import { groupNames, groupUsage, parseGroupParam } from './group-stats.ts';
import { percentileFromHistogram } from './percentiles.ts';
import { addDays, BadRangeError, type DayRange, daysBetween, parseRange, todayIn } from './range.ts';
import { syncRollupTimeZone } from './rollup-timezone.ts';
import {
  averageSecondsPerModel,
  chatStats,
  findUsername,
  modelDays,
  notFailed,
  ownUsage,
  promptsPerUsername,
  sourceTotals,
  summarizeModels,
  totals,
  userOverview,
  userStats,
} from './stats-queries.ts';
import { ownUsageHeading, ownUsagePage, type RefusedRange, refusedRangePage, statsHeading, statsPage, userChatsHeading, userChatsPage } from './stats-views.ts';

/** Rows of the per-user tables on the page; the CSV has all of them. */
const PAGE_USER_ROWS = 200;
const CSV_TABLES = ['prompts_per_user', 'average_per_model', 'models', 'users', 'daily'] as const;
type CsvTable = (typeof CSV_TABLES)[number];
const KNOWN_PARAMS = new Set(['range', 'from', 'to', 'format', 'table', 'source']);
/** /admin/stats alone also takes `group` (src/stats/group-stats.ts). */
const ADMIN_STATS_PARAMS = new Set([...KNOWN_PARAMS, 'group']);

interface Wanted {
  range: DayRange;
  csv: boolean;
  table: string | undefined;
}

/**
 * The query string of every stats page: the range, `format=html|csv`, and for /admin/stats the CSV's `table`. A
 * refused range on an HTML page answers that page again (`refusedPage`, status 400) with the message beside the
 * dates, and returns null; anything else refused (and any refusal for a CSV) is the plain 400.
 */
function parseQuery(
  req: FastifyRequest,
  reply: FastifyReply,
  timeZone: string,
  refusedPage: (refused: RefusedRange) => PageOptions,
  known = KNOWN_PARAMS,
): Wanted | null {
  const q = (req.query ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(q)) if (!known.has(key)) throw new BadRequestError(`Unknown parameter ${key}.`);
  const format = q.format ?? 'html';
  if (format !== 'html' && format !== 'csv') throw new BadRequestError('format must be html or csv (given once).');
  if (q.table !== undefined && typeof q.table !== 'string') throw new BadRequestError('Give table once.');
  const source = q.source ?? 'all';
  if (source !== 'all' && source !== 'web' && source !== 'api') throw new BadRequestError('source must be all, web or api (given once).');
  try {
    const range: DayRange = { ...parseRange(q, timeZone), source: source === 'all' ? null : (source as 'web' | 'api') };
    return { range, csv: format === 'csv', table: q.table as string | undefined };
  } catch (err) {
    if (!(err instanceof BadRangeError) || format === 'csv') throw err;
    const typed = (name: string) => (typeof q[name] === 'string' ? (q[name] as string) : '');
    reply.page(refusedPage({ from: typed('from'), to: typed('to'), field: err.field, message: err.message }), 400);
    return null;
  }
}

function sendCsv(reply: FastifyReply, name: string, r: DayRange, header: string[], rows: Cell[][]): FastifyReply {
  const span = r.from ? `${r.from}_${r.to}` : 'all';
  return reply
    .header('cache-control', 'no-store')
    .header('content-disposition', `attachment; filename="parley-${name}-${span}.csv"`)
    .type('text/csv; charset=utf-8')
    .send(toCsv(header, rows));
}

/** Charts of more than this many days draw a point per week. */
const MAX_DAILY_POINTS = 92;

function chartBucket(r: DayRange): 'day' | 'week' {
  if (r.from && r.to) return daysBetween(r.from, r.to) > MAX_DAILY_POINTS ? 'week' : 'day';
  return 'week'; // all time: usually more than a quarter; a short history just has few weekly points
}

/** Every bucket of the range (for all time: from the first with data), so a quiet day shows as zero, not as nothing. */
function bucketsOf(r: DayRange, first: string | undefined, timeZone: string, bucket: 'day' | 'week'): string[] {
  const to = r.to ?? todayIn(timeZone);
  let from = r.from ?? first ?? to;
  if (bucket === 'week') from = mondayOf(from);
  const out: string[] = [];
  for (let d = from; d <= to && out.length < 4000; d = addDays(d, bucket === 'week' ? 7 : 1)) out.push(d);
  return out;
}

function mondayOf(date: string): string {
  const weekday = new Date(`${date}T00:00:00Z`).getUTCDay(); // 0 = Sunday
  return addDays(date, -((weekday + 6) % 7));
}

export async function statsRoutes(app: FastifyInstance, opts: { db: Db; config: Config }): Promise<void> {
  const { db, config } = opts;
  const timeZone = config.STATS_TIMEZONE;
  // Existing rows (an adopted database, an upgrade, a new zone) are counted after the server listens, by a catch-up
  // job (usage-backfill-job.ts) in batches that each commit.
  await syncRollupTimeZone(db, timeZone);

  app.get('/admin/stats', async (req, reply) => {
    requireAdmin(req);
    const wanted = parseQuery(
      req,
      reply,
      timeZone,
      (refused) => ({
        title: 'Statistics',
        body: refusedRangePage(statsHeading, '/admin/stats', timeZone, refused),
      }),
      ADMIN_STATS_PARAMS,
    );
    if (wanted === null) return reply;
    const { csv, table } = wanted;
    if (csv && !CSV_TABLES.includes(table as CsvTable)) throw new BadRequestError(`table must be one of ${CSV_TABLES.join(', ')}.`);
    if (!csv && table !== undefined) throw new BadRequestError('table is only for format=csv.');
    const group = await parseGroupParam(db, (req.query as Record<string, unknown>).group);
    const range: DayRange = { ...wanted.range, group: group?.id ?? null };
    if (csv && group && table === 'average_per_model') {
      throw new BadRequestError('Inference times are kept per model for all users, not per group: leave out group for this table.');
    }

    if (csv && table === 'prompts_per_user') {
      const rows = await promptsPerUsername(db, range);
      return sendCsv(
        reply,
        table,
        range,
        ['user', 'total_prompts'],
        rows.map((u) => [u.username, u.prompts]),
      );
    }
    if (csv && table === 'average_per_model') {
      const rows = await averageSecondsPerModel(db, range);
      return sendCsv(
        reply,
        table,
        range,
        ['model', 'avg_seconds'],
        rows.map((m) => [m.model, secondsFigure(m.avgSeconds)]),
      );
    }
    if (csv && table === 'users') {
      const { rows } = await userStats(db, range, null);
      return sendCsv(
        reply,
        table,
        range,
        ['user_id', 'user', 'prompts', 'answers', 'models', 'prompt_tokens', 'completion_tokens', 'last_activity'],
        rows.map((u) => [u.userId, u.username, u.prompts, u.answers, u.models.join(' '), u.promptTokens, u.completionTokens, u.lastActivity]),
      );
    }
    if (csv && table === 'models') {
      const totalsPerModel = await modelDays(db, range, 'total');
      return sendCsv(
        reply,
        table,
        range,
        [
          'model',
          'prompts',
          'answers',
          'complete',
          'errors',
          'stopped',
          'interrupted',
          'avg_seconds',
          'failed_avg_seconds',
          'p50_seconds',
          'p95_seconds',
          'median_ttft_seconds',
          'tokens_per_second',
          'prompt_tokens',
          'completion_tokens',
        ],
        summarizeModels(totalsPerModel).map((m) => [
          m.model,
          m.prompts,
          m.responses,
          m.complete,
          m.errors,
          m.stopped,
          m.interrupted,
          secondsFigure(m.avgSeconds),
          secondsFigure(m.failedAvgSeconds),
          secondsFigure(m.p50Seconds),
          secondsFigure(m.p95Seconds),
          secondsFigure(m.medianTtftSeconds),
          tokensPerSecondFigure(m.tokensPerSecond),
          m.promptTokens,
          m.completionTokens,
        ]),
      );
    }
    if (csv) {
      const days = await modelDays(db, range, 'day');
      return sendCsv(
        reply,
        'daily',
        range,
        ['day', 'model', 'prompts', 'answers', 'p50_seconds'],
        days.map((d) => [
          d.dday,
          d.model,
          d.nprompts,
          d.nresponses,
          secondsFigure(percentileFromHistogram(notFailed(d.hist_inf, d.hist_inf_failed), HISTOGRAM_EDGES_S, 0.5)),
        ]),
      );
    }

    const bucket = chartBucket(range);
    const [overview, averagePerModel, previous, perModel, series, backfillPercent, rerenderPercent, bySource, groups, usage] = await Promise.all([
      userOverview(db, range, PAGE_USER_ROWS),
      averageSecondsPerModel(db, range),
      range.previous ? totals(db, { ...range.previous, source: range.source, group: range.group }) : Promise.resolve(null),
      modelDays(db, range, 'total'),
      modelDays(db, range, bucket),
      usageBackfillPercent(db),
      catchUpPercent(db, CATCH_UP_ADOPTED_ANSWERS),
      sourceTotals(db, range),
      groupNames(db),
      group ? groupUsage(db, group) : Promise.resolve(null),
    ]);
    return reply.page({
      title: 'Statistics',
      styles: ['/static/stats.css'],
      body: statsPage({
        range,
        timeZone,
        totals: overview.totals,
        previous,
        promptsPerUser: overview.promptsPerUser,
        usernames: overview.usernames,
        averagePerModel,
        models: summarizeModels(perModel),
        users: overview.users,
        charts: charts(series, bucketsOf(range, series[0]?.dday, timeZone, bucket), bucket, group === null),
        userLimit: PAGE_USER_ROWS,
        backfillPercent,
        rerenderPercent,
        bySource,
        group: group && usage ? { ...group, usage } : null,
        groups,
      }),
    });
  });

  app.get('/admin/stats/users/:id', async (req, reply) => {
    requireAdmin(req);
    const userId = pathId(req.params, 'id', 'This user does not exist.');
    const username = await findUsername(db, userId);
    if (username === null) throw new NotFoundError('This user does not exist.');
    const wanted = parseQuery(req, reply, timeZone, (refused) => ({
      title: `Chats of ${username}`,
      body: refusedRangePage(userChatsHeading(username, 'range=30d'), `/admin/stats/users/${userId}`, timeZone, refused),
    }));
    if (wanted === null) return reply;
    const { range, csv, table } = wanted;
    if (table !== undefined) throw new BadRequestError('This page has one table; leave out table.');
    const chats = await chatStats(db, userId, timeZone, range);
    if (csv) {
      return sendCsv(
        reply,
        `chats-of-user-${userId}`,
        range,
        ['chat_id', 'title', 'model', 'prompts', 'answers', 'failed', 'avg_seconds'],
        chats.map((c) => [c.chatId, c.title, c.model, c.prompts, c.answers, c.failed, secondsFigure(c.avgSeconds)]),
      );
    }
    return reply.page({ title: `Chats of ${username}`, styles: ['/static/stats.css'], body: userChatsPage(userId, username, range, timeZone, chats) });
  });

  // In this slice, not in src/settings/: it reads the rollups. The signed-in user's id is the only one it ever uses.
  app.get('/settings/usage', async (req, reply) => {
    const user = requireUser(req);
    const wanted = parseQuery(req, reply, timeZone, (refused) => ({
      title: 'Your usage',
      body: refusedRangePage(ownUsageHeading, '/settings/usage', timeZone, refused),
    }));
    if (wanted === null) return reply;
    const { range, csv, table } = wanted;
    if (table !== undefined) throw new BadRequestError('This page has one table; leave out table.');
    const [rows, status, groups] = await Promise.all([ownUsage(db, user.userId, range), usageStatus(db, user.userId), listUserGroups(db, user.userId)]);
    if (csv) {
      return sendCsv(
        reply,
        'my-usage',
        range,
        // The source last: the columns before it keep their places for whoever reads this CSV by position.
        ['day', 'model', 'prompts', 'answers', 'prompt_tokens', 'completion_tokens', 'source'],
        rows.map((x) => [x.day, x.model, x.prompts, x.answers, x.promptTokens, x.completionTokens, x.source]),
      );
    }
    const bySource = await sourceTotals(db, range, user.userId);
    const body = html`${ownUsagePage(range, timeZone, rows, bySource)}${ownLimitsSection(status, groups, timeZone)}`;
    return reply.page({ title: 'Your usage', styles: ['/static/stats.css'], body });
  });
}

/** Prompts and p50 inference time per day (or week), one line per model. */
function charts(days: Awaited<ReturnType<typeof modelDays>>, allDays: string[], bucket: 'day' | 'week', withTiming: boolean): LineChart[] {
  const per = bucket === 'week' ? 'week' : 'day';
  const axis = bucket === 'week' ? 'Week starting (MM-DD)' : 'Day (MM-DD)';
  const models = [...new Map(days.map((d) => [d.idllm, d.model])).entries()];
  const index = new Map(allDays.map((d, i) => [d, i]));
  const prompts = models.map(([id, name]) => ({ name, values: allDays.map(() => 0 as number | null), id }));
  const p50 = models.map(([id, name]) => ({ name, values: allDays.map(() => null as number | null), id }));
  for (const d of days) {
    const i = index.get(d.dday);
    const m = models.findIndex(([id]) => id === d.idllm);
    if (i === undefined || m < 0) continue;
    const pv = prompts[m];
    const lv = p50[m];
    if (pv) pv.values[i] = d.nprompts;
    if (lv) lv.values[i] = percentileFromHistogram(notFailed(d.hist_inf, d.hist_inf_failed), HISTOGRAM_EDGES_S, 0.5);
  }
  const promptsChart: LineChart = {
    id: 'chart-prompts',
    title: `Prompts per ${per} by model`,
    xLabel: axis,
    yLabel: 'Prompts',
    days: allDays,
    series: prompts,
    format: (v) => String(Math.round(v)),
  };
  // Timing is kept per model for all users (docs/decisions/024): a group's page has the prompts chart only.
  if (!withTiming) return [promptsChart];
  return [
    promptsChart,
    {
      id: 'chart-p50',
      title: `p50 inference time per ${per} by model (seconds, answers that did not fail)`,
      xLabel: axis,
      yLabel: 'Seconds',
      days: allDays,
      series: p50,
      format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
    },
  ];
}
