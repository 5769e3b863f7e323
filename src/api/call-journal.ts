import type { FastifyBaseLogger } from 'fastify';
import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { type AdmittedCall, type ApiCallEnd, commitMode } from './api-call-queries.ts';

/**
 * The api_call rows of this process's calls, written many in one statement, off the way to the first token
 * (docs/decisions/026-api-calls-off-the-path.md). A call's start and end were each a statement of their own, the
 * start on the first token's path and each end with three rollup upserts: at a few hundred calls a second that was
 * most of the database's work. Now:
 * - a call admitted without a limit (admitCompletion) is written here: its start, or — when it ended before its start
 *   was written, as most short calls do — its whole row at once, already final;
 * - an end whose start is written already is an UPDATE, many in one;
 * - one statement writes what arrived within WRITE_INTERVAL_MS, and migration 033's statement triggers fold the final
 *   rows with one upsert per rollup row. A statement costs the database about 0.5 ms whatever it writes, and 0.02 ms
 *   more per call: writing as soon as the previous write ended made batches of a few calls under load, and the
 *   journal half of the database's work per call (bench/README.md, api-throughput).
 * Nobody waits for it: the caller has the answer already.
 *
 * A call holding a reservation (a limit applies: its row was written by the admission, and settling it locks the
 * user's counter rows) is ended on its own, as before: a statement ending several users' calls would lock several
 * users' counters in an order another process's statement might reverse.
 *
 * What a crash loses: the calls not yet written (up to WRITE_INTERVAL_MS and the write's time) are missing from
 * api_call and the statistics, where the sweep used to end them 'interrupted'; a call written as started stays
 * 'running' and the sweep ends it (interruptAbandonedApiCalls). A write that fails (the database away) is tried again
 * with the next ones, MAX_ATTEMPTS times, then given up with an error in the log. Shutdown (close) writes everything
 * queued.
 */
/** A write starts at most this often: this long after the first call queued since the last write began. */
const WRITE_INTERVAL_MS = 20;
const MAX_BATCH = 1000;
const MAX_ATTEMPTS = 3;
const RETRY_MS = 1000;

/** A call whose row is not written yet; `end` once it ended before that. */
interface Unwritten {
  call: AdmittedCall;
  start: string;
  end?: ApiCallEnd;
  attempts: number;
}

/** The end of a call whose start is written. */
interface PendingEnd {
  callId: string;
  end: ApiCallEnd;
  attempts: number;
}

/** Each Db's journal (one per app), for whoever must see the rows now: the tests, through flush(). */
const journals = new WeakMap<Db, ApiCallJournal>();
export const journalOf = (db: Db): ApiCallJournal | undefined => journals.get(db);

export class ApiCallJournal {
  private readonly db: Db;
  private readonly log: FastifyBaseLogger;
  /** Calls admitted and not yet written, by id, in admission order. */
  private readonly starts = new Map<string, Unwritten>();
  /** Ends of calls whose start is being written or is written. */
  private ends: PendingEnd[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() when the last write began. */
  private lastWriteAt = 0;
  private writing: Promise<void> | undefined;
  private closing = false;
  private closed = false;
  /** Ends written one by one (under a limit), awaited by close(). */
  private readonly single = new Set<Promise<void>>();

  constructor(db: Db, log: FastifyBaseLogger) {
    this.db = db;
    this.log = log;
    journals.set(db, this);
  }

  /** An admitted call: its row is written soon, unless the admission wrote it already. */
  begin(call: AdmittedCall): void {
    if (call.unrecordedStart === null) return;
    this.starts.set(call.callId, { call, start: call.unrecordedStart, attempts: 0 });
    this.schedule();
  }

  /** A call's end. */
  end(call: AdmittedCall, end: ApiCallEnd): void {
    const unwritten = this.starts.get(call.callId);
    if (unwritten) {
      unwritten.end = end; // written whole, final, with its start
      return;
    }
    if (call.reserved || this.closed) {
      const written: Promise<void> = writeCalls(this.db, [], [{ callId: call.callId, end, attempts: 0 }])
        .catch((err) => this.log.error({ err, callId: call.callId }, 'could not record the end of an API call'))
        .finally(() => this.single.delete(written));
      this.single.add(written);
      return;
    }
    this.ends.push({ callId: call.callId, end, attempts: 0 });
    this.schedule();
  }

  /** Writes everything queued now, and waits for the writes in progress. */
  async flush(): Promise<void> {
    // One write at a time, always: an end must not be written before the write of its start has committed.
    while (this.writing !== undefined || this.starts.size > 0 || this.ends.length > 0) {
      if (this.writing === undefined) {
        clearTimeout(this.timer);
        this.startWrite();
      }
      await this.writing;
    }
    while (this.single.size > 0) await Promise.all(this.single);
  }

  /** Shutdown: after the last call ended, before the pool closes. An end after this is written on its own. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    await this.flush();
    this.closed = true;
    while (this.single.size > 0) await Promise.all(this.single);
  }

  private schedule(): void {
    if (this.writing === undefined && !this.closing) this.timer ??= setTimeout(() => this.startWrite(), WRITE_INTERVAL_MS);
  }

  private startWrite(): void {
    this.timer = undefined;
    this.lastWriteAt = performance.now();
    this.writing = this.write().then((written) => {
      this.writing = undefined;
      if (this.closing || (this.starts.size === 0 && this.ends.length === 0)) return;
      // What arrived during the write goes WRITE_INTERVAL_MS after it began; after a failure, later.
      if (written) this.timer = setTimeout(() => this.startWrite(), Math.max(0, this.lastWriteAt + WRITE_INTERVAL_MS - performance.now()));
      else this.timer = setTimeout(() => this.startWrite(), RETRY_MS);
    });
  }

  /** One statement for up to MAX_BATCH starts and as many ends; never rejects, says whether it was written. */
  private async write(): Promise<boolean> {
    const starts = [...this.starts.values()].slice(0, MAX_BATCH);
    for (const s of starts) this.starts.delete(s.call.callId);
    const ends = this.ends.splice(0, MAX_BATCH);
    if (starts.length === 0 && ends.length === 0) return true;
    try {
      await writeCalls(this.db, starts, ends);
      return true;
    } catch (err) {
      // Tried again with the next write, in the same state: a start not written still takes its end along.
      const retryStarts = starts.filter((s) => ++s.attempts < MAX_ATTEMPTS);
      const retryEnds = ends.filter((e) => ++e.attempts < MAX_ATTEMPTS);
      const later = [...this.starts.values()];
      this.starts.clear();
      for (const s of [...retryStarts, ...later]) this.starts.set(s.call.callId, s);
      this.ends.unshift(...retryEnds);
      // An end that arrived for a start of the failed write goes with that start now (one statement cannot insert
      // a row and update it).
      this.ends = this.ends.filter((p) => {
        const unwritten = this.starts.get(p.callId);
        if (unwritten) unwritten.end = p.end;
        return !unwritten;
      });
      this.log.error(
        { err, calls: starts.length + ends.length, givenUp: starts.length + ends.length - retryStarts.length - retryEnds.length },
        'could not record API calls (a call given up is missing from the statistics, or stays running until the sweep ends it)',
      );
      return false;
    }
  }
}

/**
 * One statement: the unwritten calls inserted (running, or final with their end), the other ends updated (a call
 * under a limit: its end alone). The times of the first token and of the end come from the process's clock, counted
 * from tinf_start, so a write a little later than the end does not lengthen the call.
 */
async function writeCalls(db: Db, starts: Unwritten[], ends: PendingEnd[]): Promise<void> {
  const s = <T>(pick: (u: Unwritten) => T) => starts.map(pick);
  const e = <T>(pick: (p: PendingEnd) => T) => ends.map(pick);
  const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);
  const writes: RawBuilder<unknown>[] = [];
  // Only the parts with rows: each part's statement trigger folds its rows, and runs even when it has none.
  if (starts.length > 0)
    writes.push(sql`started AS (
      INSERT INTO chatbot_schema.api_call (idapicall, idappuser, idapikey, idllm, tinf_start, txstatus, tfirst_token, tinf_end,
        nprompt_tokens, ncompletion_tokens, is_estimated, txerror)
      SELECT c.id, c.idappuser, c.idapikey, c.idllm, c.t0, coalesce(c.status, 'running'), c.t0 + make_interval(secs => c.first_s),
        c.t0 + make_interval(secs => c.elapsed_s), c.pt, c.ct, coalesce(c.estimated, FALSE), c.error
      FROM unnest(${s((u) => u.call.callId)}::bigint[], ${s((u) => u.call.userId)}::int[], ${s((u) => u.call.keyId)}::int[],
        ${s((u) => u.call.connection.idllm)}::int[], ${s((u) => u.start)}::timestamptz[], ${s((u) => u.end?.status ?? null)}::text[],
        ${s((u) => seconds(u.end?.firstTokenMs))}::float8[], ${s((u) => seconds(u.end?.elapsedMs))}::float8[],
        ${s((u) => u.end?.promptTokens ?? null)}::int[], ${s((u) => u.end?.completionTokens ?? null)}::int[],
        ${s((u) => u.end?.estimated ?? null)}::bool[], ${s((u) => u.end?.error ?? null)}::text[])
        AS c(id, idappuser, idapikey, idllm, t0, status, first_s, elapsed_s, pt, ct, estimated, error)
    )`);
  if (ends.length > 0)
    writes.push(sql`ended AS (
      UPDATE chatbot_schema.api_call a SET txstatus = x.status, tinf_end = a.tinf_start + make_interval(secs => x.elapsed_s),
        tfirst_token = a.tinf_start + make_interval(secs => x.first_s), nprompt_tokens = x.pt, ncompletion_tokens = x.ct,
        is_estimated = x.estimated, txerror = x.error
      FROM unnest(${e((p) => p.callId)}::bigint[], ${e((p) => p.end.status)}::text[], ${e((p) => seconds(p.end.elapsedMs))}::float8[],
        ${e((p) => seconds(p.end.firstTokenMs))}::float8[], ${e((p) => p.end.promptTokens)}::int[], ${e((p) => p.end.completionTokens)}::int[],
        ${e((p) => p.end.estimated)}::bool[], ${e((p) => p.end.error)}::text[])
        AS x(id, status, elapsed_s, first_s, pt, ct, estimated, error)
      -- Guarded on 'running': a call the sweep ended already is not counted twice.
      WHERE a.idapicall = x.id AND a.txstatus = 'running'
    )`);
  // A data-modifying WITH part runs to completion whether or not the query reads it. Committed without waiting for
  // the WAL flush on a PostgreSQL server, as the admission's writes are (commitMode).
  await sql`WITH ${sql.join(writes)} SELECT set_config('synchronous_commit', ${commitMode(db)}, true) AS async_commit`.execute(db);
}
