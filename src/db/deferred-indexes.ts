import { sql } from 'kysely';
import type { CatchUpJob } from './catch-up.ts';
import { type Db, serverUrlOf } from './database.ts';

/**
 * Indexes on message and response that only make queries fast, built after the server listens rather than in the
 * migrations (decision record 013). A database the Flask prototype left has a million rows in these tables, and each
 * index read all of their ~700 MB once more before the first request (~6 s of a start measured at 20). Until one
 * exists, the queries it serves still answer, by scanning. On PostgreSQL they are built CONCURRENTLY (writers go on),
 * one process at a time (an advisory lock); one left invalid by a process that died is dropped and built again.
 * Unique indexes and primary keys stay in the migrations: they are rules, not speed.
 */
export const DEFERRED_INDEXES: ReadonlyArray<{ name: string; on: string }> = [
  // 001: a chat's turns, and the foreign keys' cascades.
  { name: 'message_chat_idx', on: 'chatbot_schema.message (idchat)' },
  { name: 'response_message_idx', on: 'chatbot_schema.response (idmessage)' },
  { name: 'response_chat_idx', on: 'chatbot_schema.response (idchat)' },
  // 001: the sweeps' answers in flight.
  { name: 'response_status_idx', on: "chatbot_schema.response (txstatus) WHERE txstatus IN ('pending', 'streaming')" },
  // 011: the usage backfill's batches and the per-chat drill-down.
  { name: 'message_chat_created_idx', on: 'chatbot_schema.message (idchat, dtcreated)' },
  // 007: what is left to re-render (src/chat/adopted-answers.ts), found at once at every start once it is nothing.
  { name: 'response_html_not_ours_idx', on: 'chatbot_schema.response (idresponse) WHERE NOT is_html_ours' },
];

const LOCK_KEY = sql`hashtext('parley deferred indexes')`;

/** The deferred indexes that do not exist yet, or exist but are invalid (a concurrent build that died). */
async function missingIndexes(db: Db): Promise<Array<{ name: string; on: string; invalid: boolean }>> {
  const r = await sql<{ relname: string; indisvalid: boolean }>`
    SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'chatbot_schema'`.execute(db);
  const valid = new Map(r.rows.map((row) => [row.relname, row.indisvalid]));
  return DEFERRED_INDEXES.filter((ix) => valid.get(ix.name) !== true).map((ix) => ({ ...ix, invalid: valid.get(ix.name) === false }));
}

/** One index per step. */
export function deferredIndexesJob(): CatchUpJob {
  return {
    name: 'building indexes',
    percent: async (db) => {
      const missing = (await missingIndexes(db)).length;
      return missing === 0 ? null : Math.floor((100 * (DEFERRED_INDEXES.length - missing)) / DEFERRED_INDEXES.length);
    },
    step: (db) =>
      // One connection for the whole step: the advisory lock belongs to the session that takes it.
      db.connection().execute(async (conn) => {
        const postgres = serverUrlOf(db) !== undefined;
        if (postgres) {
          const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`.execute(conn);
          if (!locked.rows[0]?.ok) return false; // another process is building them
        }
        try {
          const next = (await missingIndexes(conn))[0];
          if (!next) return false;
          // PGlite is one connection in this process: nothing else writes meanwhile, and it has no CONCURRENTLY.
          const concurrently = sql.raw(postgres ? 'CONCURRENTLY' : '');
          if (next.invalid) await sql`DROP INDEX ${concurrently} IF EXISTS chatbot_schema.${sql.raw(next.name)}`.execute(conn);
          await sql`CREATE INDEX ${concurrently} IF NOT EXISTS ${sql.raw(next.name)} ON ${sql.raw(next.on)}`.execute(conn);
          return true;
        } finally {
          if (postgres) await sql`SELECT pg_advisory_unlock(${LOCK_KEY})`.execute(conn);
        }
      }),
  };
}

/** Builds every deferred index now (test and benchmark databases, which are filled before any server listens). */
export async function buildDeferredIndexes(db: Db): Promise<void> {
  const job = deferredIndexesJob();
  while (await job.step(db)) {}
}
