import { sql } from 'kysely';
import { type CatchUpJob, catchUpPercent, countCatchUpDone, countCatchUpTotal } from '../db/catch-up.ts';
import { type Db, serverUrlOf } from '../db/database.ts';

/**
 * The search rows (migration 028) of chats written before it: triggers keep every chat written since, this catch-up
 * job (src/db/catch-up.ts) fills the others after the server listens. Until it is done, search finds the chats it
 * has reached and every chat written since; /chat/search says so (searchBackfillPercent).
 */
export const CATCH_UP_CHAT_SEARCH = 'chat-search';

/** Chats per batch: each is a to_tsvector of its whole text (~2–5 ms for 20 answered prompts). */
export const SEARCH_BACKFILL_BATCH_CHATS = 100;

const left = sql<{ n: number }>`
  SELECT count(*)::int AS n FROM chatbot_schema.chat c WHERE NOT EXISTS (SELECT 1 FROM chatbot_schema.chat_search s WHERE s.idchat = c.idchat)`;

/** How far the job is, 0–100, or null when every chat has its row. */
export const searchBackfillPercent = (db: Db) => catchUpPercent(db, CATCH_UP_CHAT_SEARCH);

/**
 * Walks the chat ids upwards once per process (its cursor lives here). Processes take turns: a batch holds a
 * transaction-scoped advisory lock, and a process that finds it taken stops (the holder goes on to the end). A row a
 * trigger wrote meanwhile is newer than the batch's and is kept (ON CONFLICT DO NOTHING).
 */
export function searchBackfillJob(batchChats = SEARCH_BACKFILL_BATCH_CHATS): CatchUpJob {
  let afterId = 0;
  let counted = false;
  return {
    name: 'indexing chats for search',
    percent: async (db) => {
      if (!counted) await countCatchUpTotal(db, CATCH_UP_CHAT_SEARCH, left);
      return searchBackfillPercent(db);
    },
    step: async (db) => {
      if (!counted) {
        await countCatchUpTotal(db, CATCH_UP_CHAT_SEARCH, left);
        counted = true;
      }
      const postgres = serverUrlOf(db) !== undefined;
      const lastId = await db.transaction().execute(async (trx) => {
        if (postgres) {
          const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(hashtext('parley chat search backfill')) AS ok`.execute(trx);
          if (!locked.rows[0]?.ok) return null;
        }
        const batch = await sql<{ idchat: number }>`
          SELECT c.idchat FROM chatbot_schema.chat c
          WHERE c.idchat > ${afterId} AND NOT EXISTS (SELECT 1 FROM chatbot_schema.chat_search s WHERE s.idchat = c.idchat)
          ORDER BY c.idchat LIMIT ${batchChats}`.execute(trx);
        const ids = batch.rows.map((r) => r.idchat);
        if (ids.length === 0) return null;
        const written = await sql`
          INSERT INTO chatbot_schema.chat_search (idchat, idappuser, tsv)
          SELECT c.idchat, c.idappuser, chatbot_schema.chat_search_vector(c.idchat)
          FROM chatbot_schema.chat c WHERE c.idchat = ANY(${ids}::int[])
          ON CONFLICT (idchat) DO NOTHING`.execute(trx);
        await countCatchUpDone(trx, CATCH_UP_CHAT_SEARCH, Number(written.numAffectedRows ?? 0));
        return ids.at(-1) ?? null;
      });
      if (lastId !== null) {
        afterId = lastId;
        return true;
      }
      await countCatchUpTotal(db, CATCH_UP_CHAT_SEARCH, left);
      return false;
    },
  };
}
