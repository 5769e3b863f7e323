import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { type ApiCallEnd, finishApiCall } from './api-call-queries.ts';

/**
 * The ends of API calls, written many in one statement (docs/decisions/026-api-calls-off-the-path.md). Each end was
 * an UPDATE of its own, whose trigger upserted three rollup rows: at a few hundred calls a second that was most of
 * the database's work. Ends queue here and one UPDATE writes all that arrived within LINGER_MS (or while the previous
 * write ran); migration 033's statement trigger then folds them with one upsert per rollup row. Nobody waits for it:
 * the caller already has the answer.
 *
 * A call that holds a reservation (a limit applies: settling it locks the user's counter rows) is ended on its own,
 * as before: a statement ending several users' calls would lock several users' counters in an order another
 * process's statement might reverse.
 *
 * If the process dies before a write, those calls stay 'running' and the sweep ends them 'interrupted'
 * (interruptAbandonedApiCalls), as it did for a lost end before. A write that fails (the database away) is retried
 * with the next ones, a few times, then given up to the sweep with an error in the log.
 */
const LINGER_MS = 5;
const MAX_BATCH = 1000;
const MAX_ATTEMPTS = 3;
const RETRY_MS = 1000;

interface QueuedEnd {
  callId: string;
  end: ApiCallEnd;
  attempts: number;
}

export class ApiCallEnds {
  private queue: QueuedEnd[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closing = false;
  /** Ends written one by one (under a limit), awaited by close(). */
  private readonly single = new Set<Promise<void>>();

  private readonly db: Db;
  private readonly log: FastifyBaseLogger;

  constructor(db: Db, log: FastifyBaseLogger) {
    this.db = db;
    this.log = log;
  }

  /** Records a call's end; `reserved`: the call holds a reservation against a limit (see above). */
  record(callId: string, end: ApiCallEnd, reserved: boolean): void {
    if (reserved || this.closing) {
      const written: Promise<void> = finishApiCall(this.db, callId, end)
        .catch((err) => this.log.error({ err, callId }, 'could not record the end of an API call'))
        .finally(() => this.single.delete(written));
      this.single.add(written);
      return;
    }
    this.queue.push({ callId, end, attempts: 0 });
    if (this.writing === undefined) this.timer ??= setTimeout(() => this.startWrite(), LINGER_MS);
  }

  /** Writes everything queued (shutdown: after the last call ended, before the pool closes). */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    while (this.queue.length > 0) await this.write();
    while (this.single.size > 0) await Promise.all(this.single);
  }

  private startWrite(): void {
    this.timer = undefined;
    this.writing = this.write().then((written) => {
      this.writing = undefined;
      if (this.closing || this.queue.length === 0) return;
      // What arrived during the write goes at once (it has waited as long as the write took); after a failure, later.
      if (written) this.startWrite();
      else this.timer = setTimeout(() => this.startWrite(), RETRY_MS);
    });
  }

  /** One statement for up to MAX_BATCH ends; never rejects, says whether it was written. */
  private async write(): Promise<boolean> {
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return true;
    try {
      await finishApiCalls(this.db, batch);
      return true;
    } catch (err) {
      const retry = batch.filter((q) => ++q.attempts < MAX_ATTEMPTS);
      this.queue.unshift(...retry);
      this.log.error(
        { err, calls: batch.length, givenUp: batch.length - retry.length },
        'could not record the end of API calls (those given up stay running until the sweep ends them interrupted)',
      );
      return false;
    }
  }
}

/** finishApiCall for many calls in one UPDATE: the same columns, the same guard on 'running'. */
async function finishApiCalls(db: Db, batch: QueuedEnd[]): Promise<void> {
  const col = <T>(pick: (e: ApiCallEnd) => T) => batch.map((q) => pick(q.end));
  await sql`
    WITH ended AS (
      UPDATE chatbot_schema.api_call a SET txstatus = e.status, tinf_end = a.tinf_start + make_interval(secs => e.elapsed_s),
        tfirst_token = a.tinf_start + make_interval(secs => e.first_s), nprompt_tokens = e.pt, ncompletion_tokens = e.ct,
        is_estimated = e.estimated, txerror = e.error
      FROM unnest(${batch.map((q) => q.callId)}::bigint[], ${col((e) => e.status)}::text[], ${col((e) => e.elapsedMs / 1000)}::float8[],
        ${col((e) => (e.firstTokenMs === null ? null : e.firstTokenMs / 1000))}::float8[], ${col((e) => e.promptTokens)}::int[],
        ${col((e) => e.completionTokens)}::int[], ${col((e) => e.estimated)}::bool[], ${col((e) => e.error)}::text[])
        AS e(id, status, elapsed_s, first_s, pt, ct, estimated, error)
      WHERE a.idapicall = e.id AND a.txstatus = 'running'
      RETURNING 1
    )
    -- Committed without waiting for the WAL flush, as each end was (finishApiCall).
    SELECT count(*) AS n, set_config('synchronous_commit', 'off', true) AS async_commit FROM ended`.execute(db);
}
