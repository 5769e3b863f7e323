import { HISTOGRAM_EDGES_S } from '../db/migrations/011-usage-rollups.ts';
import type { GroupSummary } from '../groups/group-queries.ts';
import { html, type SafeHtml } from '../views/html.ts';
import { type LineChart, lineChart } from './charts.ts';
import { secondsFigure, tokensPerSecondFigure } from './figures.ts';
import type { GroupUsage } from './group-stats.ts';
import { groupPicker, groupSection } from './group-stats-views.ts';
import { type DayRange, FIRST_DATE, LAST_DATE, RANGE_KEYS, rangeQuery } from './range.ts';
import type { ChatStats, ModelStats, OwnUsageRow, SourceTotals, Totals, UserStats } from './stats-queries.ts';

export interface StatsPageData {
  range: DayRange;
  timeZone: string;
  totals: Totals;
  previous: Totals | null;
  /** The seed's table, its first `userLimit` rows, and how many usernames it has in all. */
  promptsPerUser: { username: string; prompts: number }[];
  usernames: number;
  averagePerModel: { model: string; avgSeconds: string }[];
  models: ModelStats[];
  users: { rows: UserStats[]; total: number };
  charts: LineChart[];
  userLimit: number;
  /** Set while existing rows are still being counted (after an adoption, an upgrade or a new STATS_TIMEZONE). */
  backfillPercent: number | null;
  /** How far the re-rendering of an adopted database's answers is (src/chat/adopted-answers.ts), or null when done. */
  rerenderPercent: number | null;
  /** The range's use from the chat pages and from the API, side by side. */
  bySource: SourceTotals[];
  /** The group the page is filtered to (`?group=`), with its members' use against its limits; null: everyone. */
  group: (GroupSummary & { usage: GroupUsage }) | null;
  /** Every group, for the picker. */
  groups: Array<{ id: number; name: string }>;
}

const DASH = '—';
const int = (n: number) => n.toLocaleString('en-US');
export const seconds = (v: number | string | null) => secondsFigure(v) ?? DASH;
const lastEdge = HISTOGRAM_EDGES_S[HISTOGRAM_EDGES_S.length - 1] ?? 0;
/** A percentile in the open last bucket is only known to be at least its lower edge. */
const percentile = (v: number | null) => (v === null ? DASH : v >= lastEdge ? `≥ ${lastEdge}` : seconds(v));
const rate = (num: number, den: number) => (den === 0 ? DASH : `${((100 * num) / den).toFixed(1)} %`);
const when = (d: Date | null) => (d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : DASH);

function change(now: number, before: number | undefined): SafeHtml | string {
  if (before === undefined) return '';
  if (before === 0) return html`<span class="text-body-secondary small">(before: 0)</span>`;
  const pct = ((now - before) / before) * 100;
  return html`<span class="text-body-secondary small">(${pct >= 0 ? '+' : ''}${pct.toFixed(0)} % vs ${int(before)})</span>`;
}

/** A range the page refused (src/stats/range.ts), shown again in the form with its message beside the dates. */
export interface RefusedRange {
  from: string;
  to: string;
  field: 'range' | 'from' | 'to';
  message: string;
}

function dateInput(name: 'from' | 'to', label: string, value: string, refused: RefusedRange | undefined): SafeHtml {
  const invalid = refused !== undefined && (refused.field === name || (refused.field === 'range' && name === 'from'));
  return html`<label class="small">${label} <input type="date" name="${name}" class="form-control form-control-sm${invalid ? ' is-invalid' : ''}"
      min="${FIRST_DATE}" max="${LAST_DATE}" value="${value}"${name === 'from' ? html` required` : ''}${invalid ? html` aria-invalid="true" aria-describedby="range-error"` : ''}></label>`;
}

/** A date that does not break at its hyphens on a narrow screen. */
const day = (date: string | null) => html`<span class="text-nowrap">${date}</span>`;

/** The range buttons and the custom dates; `r` null when the asked range was refused (then nothing is selected). */
const SOURCE_LABELS = { all: 'Web and API', web: 'Web', api: 'API' } as const;
const sourceName = (s: 'web' | 'api') => (s === 'api' ? 'API' : 'Web');

/** The source filter: everything, the chat pages only, or the API only; the range is kept. */
function sourcePicker(path: string, r: DayRange): SafeHtml {
  const current = r.source ?? 'all';
  return html`<nav aria-label="Source"><div class="btn-group btn-group-sm" role="group" data-testid="source-picker">
    ${(['all', 'web', 'api'] as const).map(
      (k) =>
        html`<a class="btn ${current === k ? 'btn-primary' : 'btn-outline-secondary'}" ${current === k ? html`aria-current="page"` : ''} href="${path}?${rangeQuery({ ...r, source: k === 'all' ? null : k })}">${SOURCE_LABELS[k]}</a>`,
    )}
  </div></nav>`;
}

/** Prompts, answers and tokens of the web and of the API side by side, whatever the source filter says. */
export function sourceTable(rows: SourceTotals[]): SafeHtml {
  return html`<div class="table-responsive"><table class="table table-sm w-auto" data-testid="by-source"><thead><tr><th scope="col">Source</th><th scope="col" class="text-end">Prompts</th><th scope="col" class="text-end">Answers</th><th scope="col" class="text-end">Failed</th><th scope="col" class="text-end">Prompt tokens</th><th scope="col" class="text-end">Completion tokens</th></tr></thead>
  <tbody>${rows.map(
    (x) =>
      html`<tr data-source="${x.source}"><th scope="row">${sourceName(x.source)}</th><td class="text-end">${int(x.prompts)}</td><td class="text-end">${int(x.answers)}</td><td class="text-end">${int(x.failed)}</td><td class="text-end">${int(x.promptTokens)}</td><td class="text-end">${int(x.completionTokens)}</td></tr>`,
  )}</tbody></table></div>`;
}

function rangePicker(path: string, r: DayRange | null, timeZone: string, refused?: RefusedRange): SafeHtml {
  const source = `${r?.source ? `&source=${r.source}` : ''}${r?.group ? `&group=${r.group}` : ''}`;
  return html`<div class="d-flex flex-wrap gap-2 align-items-end mb-3">
  <nav aria-label="Range"><div class="btn-group btn-group-sm" role="group">
    ${RANGE_KEYS.map(
      (k) =>
        html`<a class="btn ${r?.key === k ? 'btn-primary' : 'btn-outline-secondary'}" ${r?.key === k ? html`aria-current="page"` : ''} href="${path}?range=${k}${source}">${k}</a>`,
    )}
  </div></nav>
  ${r ? sourcePicker(path, r) : ''}
  <form method="get" action="${path}" class="d-flex flex-wrap gap-2 align-items-end">
    ${r?.source ? html`<input type="hidden" name="source" value="${r.source}">` : ''}
    ${r?.group ? html`<input type="hidden" name="group" value="${r.group}">` : ''}
    ${dateInput('from', 'From', refused ? refused.from : (r?.from ?? ''), refused)}
    ${dateInput('to', 'To', refused ? refused.to : (r?.to ?? ''), refused)}
    <button class="btn btn-sm btn-outline-secondary" type="submit">Apply</button>
  </form>
</div>
${
  refused
    ? html`<div class="alert alert-danger py-2" role="alert" id="range-error" data-testid="range-error">${refused.message}</div>
<p class="text-body-secondary">Pick a range above to see the numbers.</p>`
    : r
      ? html`<p class="text-body-secondary small" data-testid="range-label">Showing <strong>${r.key === 'custom' ? html`${day(r.from)} to ${day(r.to)}` : html`${r.label}${r.from ? html` (${day(r.from)} to ${day(r.to)})` : ''}`}</strong>; days are counted in <strong>${timeZone}</strong>.</p>`
      : ''
}`;
}

/** A page whose range was refused: its heading, the form with the message, nothing else (status 400). */
export function refusedRangePage(heading: SafeHtml, path: string, timeZone: string, refused: RefusedRange): SafeHtml {
  return html`${heading}
${rangePicker(path, null, timeZone, refused)}`;
}

const csvLink = (r: DayRange, table: string) => html`<a class="small ms-2" href="/admin/stats?${rangeQuery(r)}&amp;format=csv&amp;table=${table}">CSV</a>`;

function totalsCards(t: Totals, prev: Totals | null): SafeHtml {
  const card = (label: string, value: string, extra: SafeHtml | string) =>
    html`<div class="col-6 col-md-3"><div class="card h-100"><div class="card-body py-2">
      <div class="text-body-secondary small">${label}</div><div class="fs-4">${value}</div>${extra}</div></div></div>`;
  const errorRate = (x: Totals) => (x.answers === 0 ? null : (100 * x.failed) / x.answers);
  const er = errorRate(t);
  const per = prev ? errorRate(prev) : null;
  return html`<div class="row g-2 mb-4" data-testid="totals">
    ${card('Prompts', int(t.prompts), change(t.prompts, prev?.prompts))}
    ${card('Answers', int(t.answers), change(t.answers, prev?.answers))}
    ${card('Active users', int(t.activeUsers), change(t.activeUsers, prev?.activeUsers))}
    ${card('Error rate', rate(t.failed, t.answers), prev ? html`<span class="text-body-secondary small">(before: ${per === null ? DASH : `${per.toFixed(1)} %`})</span>` : '')}
  </div>${er === null && t.prompts === 0 ? html`<p class="alert alert-info">No prompts in this range yet. Statistics appear here as people chat; try <a href="/admin/stats?range=all">all time</a>.</p>` : ''}`;
}

interface Column {
  label: string;
  /** Numbers align right. */
  end?: boolean;
}

/**
 * A table that stacks into one card per row on a phone (`table-stack`, public/app.css): every cell carries its
 * column's name as data-label. `empty` is the one row shown when there are none.
 */
function stackTable(testId: string, columns: Column[], rows: (SafeHtml | string)[][], empty: string): SafeHtml {
  const align = (c: Column | undefined) => (c?.end ? 'text-end' : '');
  return html`<div class="table-responsive"><table class="table table-sm align-middle table-stack" data-testid="${testId}">
    <thead><tr>${columns.map((c) => html`<th scope="col" class="${align(c)}">${c.label}</th>`)}</tr></thead>
    <tbody>${
      rows.length === 0
        ? html`<tr><td colspan="${columns.length}" class="text-body-secondary">${empty}</td></tr>`
        : rows.map((row) => html`<tr>${row.map((cell, i) => html`<td class="${align(columns[i])}" data-label="${columns[i]?.label ?? ''}">${cell}</td>`)}</tr>`)
    }</tbody>
  </table></div>`;
}

export const statsHeading = html`<h1 class="h3 mb-3">Usage &amp; inference statistics</h1>`;

export function statsPage(d: StatsPageData): SafeHtml {
  const r = d.range;
  const timing = d.group === null;
  return html`${statsHeading}
${rangePicker('/admin/stats', r, d.timeZone)}
${groupPicker(r, d.groups, d.group)}
${d.group ? groupSection(r, d.group, d.timeZone) : ''}
${d.backfillPercent === null ? '' : html`<p class="alert alert-warning" role="status" data-testid="backfill">Statistics are being computed (${d.backfillPercent} %): the numbers below are still growing.</p>`}
${d.rerenderPercent === null ? '' : html`<p class="alert alert-info" role="status" data-testid="rerender">${d.rerenderPercent} % of adopted answers re-rendered; the others are rendered from their markdown whenever they are shown.</p>`}
${totalsCards(d.totals, d.previous)}
<section class="mb-2">
  <h2 class="h5">Web and API</h2>
  <p class="small text-body-secondary">Chat pages (web) and the OpenAI-compatible API, side by side; the buttons above show one of them in every table.</p>
  ${sourceTable(d.bySource)}
</section>
<p class="small text-body-secondary">Error rate: answers that ended in an error or were interrupted, of all answers. Stopped answers were stopped by their user and are not errors. Deleted chats keep their counts here.</p>

<div class="row g-4 mb-4">
  ${d.charts.map((c) => html`<div class="col-lg-6">${lineChart(c)}</div>`)}
  ${timing ? '' : html`<div class="col-lg-6">${allUsersTiming(r)}</div>`}
  <p class="small text-body-secondary mt-1">The charts' numbers, per day and model: <a href="/admin/stats?${rangeQuery(r)}&amp;format=csv&amp;table=daily">CSV</a></p>
</div>

<div class="row g-4">
<section class="col-lg-6">
  <h2 class="h5">Total prompts per user ${csvLink(r, 'prompts_per_user')}</h2>
  ${
    d.promptsPerUser.length === 0
      ? html`<p class="text-body-secondary">No prompts in this range.</p>`
      : html`<table class="table table-sm" data-testid="prompts-per-user"><thead><tr><th scope="col">User</th><th scope="col" class="text-end"># Prompts</th></tr></thead><tbody>
    ${d.promptsPerUser.map((u) => html`<tr><td>${u.username}</td><td class="text-end">${int(u.prompts)}</td></tr>`)}
  </tbody></table>${d.usernames > d.promptsPerUser.length ? html`<p class="small text-body-secondary">The first ${d.promptsPerUser.length} of ${int(d.usernames)}; the CSV has everyone.</p>` : ''}`
  }
</section>
${
  timing
    ? html`<section class="col-lg-6">
  <h2 class="h5">Average inference time per model (seconds) ${csvLink(r, 'average_per_model')}</h2>
  <p class="small text-body-secondary">As the design note defines it: every answer with a start and an end time, failed ones included. The per-model table below keeps failed answers apart.</p>
  ${
    d.averagePerModel.length === 0
      ? html`<p class="text-body-secondary">No timed answers in this range.</p>`
      : html`<table class="table table-sm" data-testid="average-per-model"><thead><tr><th scope="col">Model</th><th scope="col" class="text-end">Avg. time (s)</th></tr></thead><tbody>
    ${d.averagePerModel.map((m) => html`<tr><td>${m.model}</td><td class="text-end">${seconds(m.avgSeconds)}</td></tr>`)}
  </tbody></table>`
  }
</section>`
    : ''
}
</div>

<section class="mt-4">
  <h2 class="h5">Per model ${csvLink(r, 'models')}</h2>
  ${timing ? modelTable(d.models) : groupModelTable(d.models)}
</section>

<section class="mt-4">
  <h2 class="h5">Per user ${csvLink(r, 'users')}</h2>
  ${stackTable(
    'users',

    [
      { label: 'User' },
      { label: 'Prompts', end: true },
      { label: 'Answers', end: true },
      { label: 'Models' },
      { label: 'Tokens (prompt / completion)', end: true },
      { label: 'Last activity' },
      { label: 'Chats' },
    ],
    d.users.rows.map((u) => [
      html`<a href="/admin/users/${u.userId}">${u.username}</a>`,
      int(u.prompts),
      int(u.answers),
      u.models.join(', '),
      `${int(u.promptTokens)} / ${int(u.completionTokens)}`,
      when(u.lastActivity),
      html`<a href="/admin/stats/users/${u.userId}?${rangeQuery({ ...r, group: null })}">per chat</a>`,
    ]),
    'Nobody used a model in this range.',
  )}
  ${d.users.total > d.users.rows.length ? html`<p class="small text-body-secondary">The ${d.users.rows.length} most active of ${int(d.users.total)} users; the CSV has everyone.</p>` : ''}
</section>`;
}

/** The per-model table of everyone: statuses, timing and tokens. */
function modelTable(models: ModelStats[]): SafeHtml {
  return html`${stackTable(
    'models',
    [
      { label: 'Model' },
      { label: 'Prompts', end: true },
      { label: 'Answers', end: true },
      { label: 'Errors', end: true },
      { label: 'Stopped', end: true },
      { label: 'Interrupted', end: true },
      { label: 'Avg (s)', end: true },
      { label: 'p50 (s)', end: true },
      { label: 'p95 (s)', end: true },
      { label: 'Median first token (s)', end: true },
      { label: 'Tokens/s', end: true },
      { label: 'Failed: avg (s)', end: true },
      { label: 'Prompt tokens', end: true },
      { label: 'Completion tokens', end: true },
    ],
    models.map((m) => [
      m.model,
      int(m.prompts),
      int(m.responses),
      int(m.errors),
      int(m.stopped),
      int(m.interrupted),
      seconds(m.avgSeconds),
      percentile(m.p50Seconds),
      percentile(m.p95Seconds),
      percentile(m.medianTtftSeconds),
      tokensPerSecondFigure(m.tokensPerSecond) ?? DASH,
      seconds(m.failedAvgSeconds),
      int(m.promptTokens),
      int(m.completionTokens),
    ]),
    'No answers in this range.',
  )}
  <p class="small text-body-secondary">Avg, p50, p95, first token and tokens/s are of the answers that did not fail (complete, or stopped by their user), so a model that fails fast does not look fast; failed answers (error or interrupted) have their own average. Fastest first. p50, p95 and the median time to first token come from histograms with bucket edges at ${HISTOGRAM_EDGES_S.join(', ')} s (linear inside a bucket, so within one bucket of the exact value). Tokens/s: completion tokens over the time after the first token, for answers whose server reported token counts.</p>`;
}

/** A group's per-model table: what the per-user rollups hold (no statuses but failed, no timing: see allUsersTiming). */
function groupModelTable(models: ModelStats[]): SafeHtml {
  return stackTable(
    'models',
    [
      { label: 'Model' },
      { label: 'Prompts', end: true },
      { label: 'Answers', end: true },
      { label: 'Failed', end: true },
      { label: 'Prompt tokens', end: true },
      { label: 'Completion tokens', end: true },
    ],
    [...models]
      .sort((a, b) => b.prompts - a.prompts || a.model.localeCompare(b.model))
      .map((m) => [m.model, int(m.prompts), int(m.responses), int(m.errors), int(m.promptTokens), int(m.completionTokens)]),
    'No answers in this range.',
  );
}

/** What a group's page says where the timing would be. */
const allUsersTiming = (r: DayRange) =>
  html`<p class="small text-body-secondary" data-testid="timing-for-all">Inference times are kept per model for all users, not per person, so they are not shown for a group (the same model answers everyone alike): <a href="/admin/stats?${rangeQuery({ ...r, group: null })}">see them for all users</a>.</p>`;

export const userChatsHeading = (username: string, backQuery: string) => html`<p><a href="/admin/stats?${backQuery}">← Statistics</a></p>
<h1 class="h3 mb-3">Chats of ${username}</h1>`;

export function userChatsPage(userId: number, username: string, r: DayRange, timeZone: string, chats: ChatStats[]): SafeHtml {
  return html`${userChatsHeading(username, rangeQuery(r))}
${rangePicker(`/admin/stats/users/${userId}`, r, timeZone)}
${stackTable(
  'chats',
  [
    { label: 'Chat' },
    { label: 'Model' },
    { label: 'Prompts', end: true },
    { label: 'Answers', end: true },
    { label: 'Failed', end: true },
    { label: 'Avg. time (s)', end: true },
  ],
  chats.map((c) => [c.title ?? `Chat ${c.chatId}`, c.model ?? DASH, int(c.prompts), int(c.answers), int(c.failed), seconds(c.avgSeconds)]),
  'No chats with activity in this range (deleted chats are not listed; their counts stay in the totals).',
)}
<p class="small text-body-secondary">Avg. time: of the answers that did not fail (failed: ended in an error or interrupted).</p>
<p><a class="small" href="/admin/stats/users/${userId}?${rangeQuery(r)}&amp;format=csv">CSV</a> · <a class="small" href="/admin/users/${userId}">Account</a></p>`;
}

export const ownUsageHeading = html`<h1 class="h3 mb-3">Your usage</h1>`;

export function ownUsagePage(r: DayRange, timeZone: string, rows: OwnUsageRow[], bySource: SourceTotals[]): SafeHtml {
  const sum = (f: (x: OwnUsageRow) => number) => rows.reduce((a, x) => a + f(x), 0);
  return html`${ownUsageHeading}
${rangePicker('/settings/usage', r, timeZone)}
${rows.length === 0 ? '' : html`<p>${int(sum((x) => x.prompts))} prompts, ${int(sum((x) => x.answers))} answers, ${int(sum((x) => x.promptTokens))} prompt and ${int(sum((x) => x.completionTokens))} completion tokens.</p>`}
${sourceTable(bySource)}
${stackTable(
  'own-usage',
  [
    { label: 'Day' },
    { label: 'Source' },
    { label: 'Model' },
    { label: 'Prompts', end: true },
    { label: 'Answers', end: true },
    { label: 'Prompt tokens', end: true },
    { label: 'Completion tokens', end: true },
  ],
  rows.map((x) => [x.day, sourceName(x.source), x.model, int(x.prompts), int(x.answers), int(x.promptTokens), int(x.completionTokens)]),
  'No usage in this range yet.',
)}
<p><a class="small" href="/settings/usage?${rangeQuery(r)}&amp;format=csv">CSV</a></p>`;
}
