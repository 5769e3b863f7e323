import { BadRequestError } from '../http/errors.ts';

/**
 * A range of whole days in STATS_TIMEZONE, because the rollups are daily (docs/decisions/006-usage-rollups.md).
 * `from`/`to` are inclusive calendar dates (YYYY-MM-DD); both null means all time.
 */
export interface DayRange {
  key: string;
  label: string;
  from: string | null;
  to: string | null;
  /** The range of the same length just before this one, for the totals' comparison; null for all time. */
  previous: { from: string; to: string } | null;
  /** Only the use from the chat pages ('web') or from the API ('api'); absent or null: both. */
  source?: 'web' | 'api' | null;
  /** Only the members of this group (its id; /admin/stats only); absent or null: everyone. */
  group?: number | null;
}

export const RANGE_KEYS = ['24h', '7d', '30d', '90d', 'all'] as const;
type RangeKey = (typeof RANGE_KEYS)[number];
/** 24h is "yesterday and today": the fewest whole days that hold the last 24 hours. */
const RANGE_DAYS: Record<Exclude<RangeKey, 'all'>, number> = { '24h': 2, '7d': 7, '30d': 30, '90d': 90 };
const RANGE_LABELS: Record<RangeKey, string> = {
  '24h': 'last 24 hours (yesterday and today)',
  '7d': 'last 7 days',
  '30d': 'last 30 days',
  '90d': 'last 90 days',
  all: 'all time',
};
export const DEFAULT_RANGE: RangeKey = '30d';
/** A custom range longer than this is refused: nobody means 300 years, and the chart would draw every day. */
const MAX_CUSTOM_DAYS = 3660;

/** A refused range, with the field it is about, so that a page can show the message beside that field. */
export class BadRangeError extends BadRequestError {
  readonly field: 'range' | 'from' | 'to';
  constructor(field: 'range' | 'from' | 'to', message: string) {
    super(message);
    this.field = field;
  }
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
/**
 * The dates a range may name. Nothing Parley (or the seed app) stored can be older than the Unix epoch, and
 * PostgreSQL has no year 0: without a floor, 0000-01-01 (or a comparison period reaching back into year 0) was a 500.
 * The comparison period of the earliest range still starts in 1960, well inside what PostgreSQL and Date handle.
 */
export const FIRST_DATE = '1970-01-01';
export const LAST_DATE = '9999-12-31';

/** Today's date where the statistics count days. */
export function todayIn(timeZone: string, now = new Date()): string {
  // en-CA formats as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
}

/** Calendar arithmetic on plain dates, in UTC so that no zone's DST moves a day. */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000) + 1;
}

function parseDate(value: string, name: 'from' | 'to'): string {
  const m = DATE_RE.exec(value);
  const d = m ? new Date(`${value}T00:00:00Z`) : null;
  // Date.parse rolls 2026-02-31 over to March; a real date formats back to itself.
  if (!d || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) {
    throw new BadRangeError(name, `${name} must be a date like 2026-01-31.`);
  }
  if (value < FIRST_DATE || value > LAST_DATE) throw new BadRangeError(name, `${name} must be between ${FIRST_DATE} and ${LAST_DATE}.`);
  return value;
}

/** One value of a query parameter: a repeated one is refused rather than guessed. */
function single(query: Record<string, unknown>, name: 'range' | 'from' | 'to'): string | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new BadRangeError(name, `Give ${name} once.`);
  return v;
}

/** `?range=` or `?from=&to=` (to defaults to today); anything else is a 400 with the reason, never a silent "all". */
export function parseRange(query: Record<string, unknown>, timeZone: string, now = new Date()): DayRange {
  const range = single(query, 'range');
  const fromRaw = single(query, 'from');
  const toRaw = single(query, 'to');
  const today = todayIn(timeZone, now);
  if (fromRaw !== undefined || toRaw !== undefined) {
    if (range !== undefined) throw new BadRangeError('range', 'Give either range or from and to, not both.');
    if (fromRaw === undefined || fromRaw === '') throw new BadRangeError('from', 'from is missing: give a start date like 2026-01-01.');
    const from = parseDate(fromRaw, 'from');
    const to = toRaw === undefined || toRaw === '' ? today : parseDate(toRaw, 'to');
    if (from > to) throw new BadRangeError('to', `From (${from}) is after To (${to}): the range must not end before it starts.`);
    const days = daysBetween(from, to);
    if (days > MAX_CUSTOM_DAYS) throw new BadRangeError('to', `A custom range is at most ${MAX_CUSTOM_DAYS} days; use range=all for everything.`);
    return { key: 'custom', label: `${from} to ${to}`, from, to, previous: { from: addDays(from, -days), to: addDays(from, -1) } };
  }
  const key = (range ?? DEFAULT_RANGE) as RangeKey;
  if (!RANGE_KEYS.includes(key)) throw new BadRangeError('range', `range must be one of ${RANGE_KEYS.join(', ')}.`);
  if (key === 'all') return { key, label: RANGE_LABELS.all, from: null, to: null, previous: null };
  const days = RANGE_DAYS[key];
  const from = addDays(today, -(days - 1));
  return { key, label: RANGE_LABELS[key], from, to: today, previous: { from: addDays(from, -days), to: addDays(from, -1) } };
}

/** The query string that asks for the same range (links to CSV and drill-downs keep it). */
export function rangeQuery(r: DayRange): string {
  const filters = `${r.source ? `&source=${r.source}` : ''}${r.group ? `&group=${r.group}` : ''}`;
  if (r.key === 'custom') return `from=${r.from}&to=${r.to}${filters}`;
  return `range=${r.key}${filters}`;
}
