/**
 * Telling a database outage from a failed query, and keeping an outage to a few lines of log: background work that
 * ticks (the sweep for orphaned answers, each answer's partial saves and heartbeat, the instance lock's reconnects,
 * session cleanup) would otherwise log an error on every tick for as long as the database is away.
 */

/**
 * SQLSTATE classes and codes that mean "the database cannot serve us right now", not "this query is wrong":
 * 08 connection exception, 57P01–57P03 admin/crash shutdown and "cannot connect now" (starting up, shutting
 * down), 53300 too many connections. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const unavailableSqlStates = /^(08...|57P0[1-3]|53300)$/;
/** Node's socket errors on a connection to the server (refused while it is down, reset when it dies). */
const socketErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** pg's own messages, which carry no code: a connection cut mid-query, a pool connect past its timeout. */
const poolMessages = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable)/;

/**
 * Whether `err` says the database is unreachable (down, restarting, out of connections) rather than that a query
 * failed: the error handler answers those with a 503 and Retry-After, which a client may retry, instead of a 500.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code } = err as { code?: unknown };
  if (typeof code === 'string' && (unavailableSqlStates.test(code) || socketErrorCodes.has(code))) return true;
  if (poolMessages.test(err.message)) return true;
  // Connecting to a name with several addresses (localhost: ::1 and 127.0.0.1) fails with one error per address.
  return err instanceof AggregateError && err.errors.some(isDatabaseUnavailable);
}

/** While the database is away, how often the outage is summed up in the log. */
export const OUTAGE_SUMMARY_INTERVAL_MS = 60_000;

export interface OutageLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * One per process, shared by every ticking task. The first tick that fails because the database is unavailable
 * logs the outage's start (with its error); later failures are only counted, by task, and summed up once a minute
 * (at the first failure after the minute, so there is no timer of its own to stop); the first tick that reaches the
 * database again logs the end, with the outage's length and the failures counted. Other errors are the caller's
 * to log, as each one may be a bug.
 */
export class OutageLog {
  readonly #log: OutageLogger;
  readonly #now: () => number;
  #since: number | null = null;
  #lastReportAt = 0;
  /** Failed ticks by task since the last line about the outage. */
  #failures = new Map<string, number>();

  constructor(log: OutageLogger, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /**
   * A tick of `task` failed with `err`. Returns true when `err` is the database being unavailable: it is then
   * logged here (at the outage's start, and in the minute's summary); false: the caller logs it.
   */
  failed(task: string, err: unknown): boolean {
    if (!isDatabaseUnavailable(err)) return false;
    const now = this.#now();
    const starting = this.#since === null;
    if (starting) {
      this.#since = now;
      this.#lastReportAt = now;
      this.#failures.clear();
      const { message, code } = err as Error & { code?: unknown };
      this.#log.error({ err: { message, code }, task }, 'database unavailable: background work fails until it is back (summed up every minute)');
    }
    this.#failures.set(task, (this.#failures.get(task) ?? 0) + 1);
    if (!starting && now - this.#lastReportAt >= OUTAGE_SUMMARY_INTERVAL_MS) {
      const outageS = this.#secondsSince(now);
      this.#log.error({ outageS, failedTicks: this.#takeFailures() }, `database still unavailable after ${outageS} s`);
      this.#lastReportAt = now;
    }
    return true;
  }

  /** A tick reached the database: ends the outage in progress, if any. */
  succeeded(): void {
    if (this.#since === null) return;
    const outageS = this.#secondsSince(this.#now());
    this.#log.warn({ outageS, failedTicks: this.#takeFailures() }, `database available again after ${outageS} s`);
    this.#since = null;
  }

  #secondsSince(now: number): number {
    return Math.round((now - (this.#since ?? now)) / 100) / 10;
  }

  #takeFailures(): Record<string, number> {
    const counted = Object.fromEntries(this.#failures);
    this.#failures.clear();
    return counted;
  }
}
