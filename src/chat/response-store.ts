import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ResponseStatus } from '../db/schema.ts';
import { ACTIVE_STATUSES } from './chat-queries.ts';

/** A live answer writes its heartbeat at least this often; one silent for STALE_AFTER_S is from a dead process. */
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

/**
 * Answers left pending/streaming by a process that died (no heartbeat for STALE_AFTER_S) become `interrupted`,
 * keeping the text they had. Run at start and periodically, so it also works when other processes stay up.
 */
export async function markStaleResponsesInterrupted(db: Db): Promise<number> {
  const result = await db
    .updateTable('chatbot_schema.response')
    .set({ txstatus: 'interrupted', tinf_end: sql`now()`, txerror: 'The server restarted before this answer was finished.' })
    .where('txstatus', 'in', ACTIVE_STATUSES)
    .where((eb) => eb.or([eb('dtheartbeat', 'is', null), eb('dtheartbeat', '<', sql<Date>`now() - make_interval(secs => ${STALE_AFTER_S})`)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
