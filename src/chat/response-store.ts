import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { INSTANCE_LOCK_CLASS } from '../db/instance-lock.ts';
import type { ResponseStatus } from '../db/schema.ts';
import { ACTIVE_STATUSES } from './chat-queries.ts';

/** A live answer writes its heartbeat at least this often; one silent for STALE_AFTER_S is from a dead process (the fallback, see below). */
export const HEARTBEAT_INTERVAL_MS = 5_000;
export const STALE_AFTER_S = 30;

// Every write below guards on an active status, so a row already finalized or swept is never overwritten.

export async function markStreaming(db: Db, responseId: number): Promise<void> {
  await db
    .updateTable('chatbot_schema.response')
    .set({ txstatus: 'streaming', tfirst_token: sql`now()`, dtheartbeat: sql`now()` })
    .where('idresponse', '=', responseId)
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .execute();
}

/** Saves the text received so far (and beats the heart). Returns whether someone asked this answer to stop. */
export async function flushPartial(db: Db, responseId: number, markdown: string | null): Promise<boolean> {
  const row = await db
    .updateTable('chatbot_schema.response')
    .set({ dtheartbeat: sql`now()`, ...(markdown === null ? {} : { txmarkdown: markdown, txcontent: '' }) })
    .where('idresponse', '=', responseId)
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .returning('is_stop_requested')
    .executeTakeFirst();
  return row?.is_stop_requested ?? true;
}

/**
 * Saves only the text that arrived since the last save (`txmarkdown || delta`), so a long answer saved every second
 * sends each character once rather than its whole text each time. It appends only when the stored text is exactly
 * `storedBytes` long (UTF-8; a write that failed after it committed, say, would otherwise append twice); otherwise
 * nothing is written and `null` is returned: the caller then saves the whole text with flushPartial.
 */
export async function appendPartial(db: Db, responseId: number, delta: string, storedBytes: number): Promise<boolean | null> {
  const row = await db
    .updateTable('chatbot_schema.response')
    .set({ dtheartbeat: sql`now()`, txmarkdown: sql<string>`txmarkdown || ${delta}` })
    .where('idresponse', '=', responseId)
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .where(sql<number>`octet_length(txmarkdown)`, '=', storedBytes)
    .returning('is_stop_requested')
    .executeTakeFirst();
  return row ? row.is_stop_requested : null;
}

export interface FinalResponse {
  status: Extract<ResponseStatus, 'complete' | 'stopped' | 'error' | 'interrupted'>;
  markdown: string;
  html: string;
  error: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
}

/** The seed's completion: answer markdown in txmarkdown, its HTML in txcontent and tinf_end = now(), in one update. */
export async function finalizeResponse(db: Db, responseId: number, r: FinalResponse): Promise<void> {
  await db
    .updateTable('chatbot_schema.response')
    .set({
      txstatus: r.status,
      txmarkdown: r.markdown,
      txcontent: r.html,
      txerror: r.error,
      tinf_end: sql`now()`,
      nprompt_tokens: r.promptTokens,
      ncompletion_tokens: r.completionTokens,
      dtheartbeat: sql`now()`,
    })
    .where('idresponse', '=', responseId)
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .execute();
}

export async function requestStop(db: Db, responseId: number): Promise<void> {
  await db.updateTable('chatbot_schema.response').set({ is_stop_requested: true }).where('idresponse', '=', responseId).execute();
}

// An answer ended by a sweep keeps the text it had; one that never got its first token loses the placeholder, so
// neither the page nor the model's next history shows "🧠 Thinking..." as an answer.
const interruptedBecause = (reason: string) => ({
  txstatus: 'interrupted' as const,
  tinf_end: sql<Date>`now()`,
  txerror: reason,
  txmarkdown: sql<string>`CASE WHEN txstatus = 'pending' THEN '' ELSE txmarkdown END`,
  txcontent: sql<string>`CASE WHEN txstatus = 'pending' THEN '' ELSE txcontent END`,
});
const RESTARTED = 'The server restarted before this answer was finished.';

/**
 * Answers still active whose process is gone become `interrupted`: at once when their owner no longer holds its
 * instance lock (src/db/instance-lock.ts: its connection closed, so the process ended or crashed), and as a
 * fallback when the heartbeat has been silent for STALE_AFTER_S (no owner recorded; or an owner cut off from the
 * database while its lock's session lingers on the server). A live process holds its lock and beats every 5 s, so
 * its answers are never touched. Run at start and periodically, by every process.
 */
export async function markOrphanedResponsesInterrupted(db: Db): Promise<number> {
  const result = await db
    .updateTable('chatbot_schema.response')
    .set(interruptedBecause(RESTARTED))
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .where((eb) =>
      eb.or([
        eb.and([
          eb('idowner', 'is not', null),
          sql<boolean>`NOT EXISTS (SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
              AND l.classid = ${INSTANCE_LOCK_CLASS}::oid AND l.objid = idowner::oid)`,
        ]),
        eb('dtheartbeat', 'is', null),
        eb('dtheartbeat', '<', sql<Date>`now() - make_interval(secs => ${STALE_AFTER_S})`),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Embedded PGlite at start: only one process ever runs on it, so every answer still active was left by a dead one. */
export async function markAllActiveResponsesInterrupted(db: Db): Promise<number> {
  const result = await db.updateTable('chatbot_schema.response').set(interruptedBecause(RESTARTED)).where('txstatus', 'in', ACTIVE_STATUSES).executeTakeFirst();
  return Number(result.numUpdatedRows);
}
