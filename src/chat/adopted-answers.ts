import { sql } from 'kysely';
import { CATCH_UP_ADOPTED_ANSWERS, type CatchUpJob, catchUpPercent, countCatchUpDone, countCatchUpTotal } from '../db/catch-up.ts';
import { type Db, serverUrlOf } from '../db/database.ts';
import { renderAdoptedAnswer } from './markdown.ts';

/**
 * The HTML of answers Parley did not render (is_html_ours false, migration 007: the Flask prototype's, which may hold
 * live script) is replaced by our rendering of their markdown. A catch-up job (src/db/catch-up.ts): after the server
 * listens, in batches that each commit; until a row is done, listTurns renders its markdown on every read instead.
 */

/** Rows per batch: a batch's rendering keeps its rows locked (and, on PGlite, the one connection) for ~0.1–0.3 s. */
export const RERENDER_BATCH_ROWS = 200;

/** Rendering yields to the event loop this often, so requests in this process are served between answers. */
const RENDER_SLICE_MS = 10;

const left = sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.response WHERE NOT is_html_ours`;

export interface RerenderOptions {
  batchSize?: number;
  /** The renderer (tests count its calls per row); renderAdoptedAnswer unless given. */
  render?: (markdown: string | null, html: string | null, id: number) => string;
}

/**
 * A job for one process. Its cursor lives here, not in the database: each process walks the ids upwards once per
 * start, so rows it rendered (dead index entries until a vacuum) are never scanned again by it.
 *
 * Several processes share the work: FOR UPDATE SKIP LOCKED gives each row to one batch of one process, and a row
 * another transaction holds (a batch of another process, an answer being written) is left to it; a row left behind
 * by a process that died mid-batch is taken at the next start, and rendered on read until then.
 */
export function adoptedAnswersJob(opts: RerenderOptions = {}): CatchUpJob {
  const batchSize = opts.batchSize ?? RERENDER_BATCH_ROWS;
  const render = opts.render ?? ((markdown, html) => renderAdoptedAnswer(markdown, html));
  let afterId = 0;
  let counted = false;
  return {
    name: 're-rendering adopted answers',
    percent: async (db) => {
      // Before any process has counted (the migration does not: it would delay the start), `npm run migrate` still
      // says whether there is work left.
      if (!counted) await countCatchUpTotal(db, CATCH_UP_ADOPTED_ANSWERS, left);
      return catchUpPercent(db, CATCH_UP_ADOPTED_ANSWERS);
    },
    step: async (db) => {
      if (!counted) {
        await countCatchUpTotal(db, CATCH_UP_ADOPTED_ANSWERS, left);
        counted = true;
      }
      // PostgreSQL: the batch's rows stay locked while they render, so no other process takes them. PGlite has one
      // process (the data-directory lock) and one connection, which a transaction would hold for the whole rendering
      // and keep every request (/readyz included) waiting: there the rows are read, rendered, then written in a short
      // transaction, each only if it is still not ours.
      const exclusive = serverUrlOf(db) !== undefined;
      const lastId = exclusive
        ? await db.transaction().execute(async (trx) => {
            const rows = await batchQuery(trx, afterId, batchSize).forUpdate().skipLocked().execute();
            await writeBatch(trx, rows, await renderBatch(rows, render));
            return rows.at(-1)?.idresponse ?? null;
          })
        : await (async () => {
            const rows = await batchQuery(db, afterId, batchSize).execute();
            const html = await renderBatch(rows, render);
            await db.transaction().execute((trx) => writeBatch(trx, rows, html));
            return rows.at(-1)?.idresponse ?? null;
          })();
      if (lastId !== null) {
        afterId = lastId;
        return true;
      }
      // Nothing left for this process: the total becomes what was done plus what others still hold (usually 0).
      await countCatchUpTotal(db, CATCH_UP_ADOPTED_ANSWERS, left);
      return false;
    },
  };
}

const batchQuery = (db: Db, afterId: number, batchSize: number) =>
  db
    .selectFrom('chatbot_schema.response')
    .select(['idresponse', 'txmarkdown', 'txcontent'])
    .where(sql<boolean>`NOT is_html_ours`)
    .where('idresponse', '>', afterId)
    .orderBy('idresponse')
    .limit(batchSize);

type Row = { idresponse: number; txmarkdown: string | null; txcontent: string | null };

/** Renders the rows, yielding to the event loop every RENDER_SLICE_MS so this process's requests are served meanwhile. */
async function renderBatch(rows: Row[], render: NonNullable<RerenderOptions['render']>): Promise<string[]> {
  const html: string[] = [];
  let slice = performance.now();
  for (const r of rows) {
    html.push(render(r.txmarkdown, r.txcontent, r.idresponse));
    if (performance.now() - slice > RENDER_SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
  }
  return html;
}

/** Stores the HTML of the rows still not ours (a row deleted meanwhile is skipped) and counts them as done. */
async function writeBatch(trx: Db, rows: Row[], html: string[]): Promise<void> {
  if (rows.length === 0) return;
  const written = await sql`
    UPDATE chatbot_schema.response AS r SET txcontent = v.html, is_html_ours = TRUE
    FROM unnest(${rows.map((r) => r.idresponse)}::int[], ${html}::text[]) AS v(idresponse, html)
    WHERE r.idresponse = v.idresponse AND NOT r.is_html_ours`.execute(trx);
  await countCatchUpDone(trx, CATCH_UP_ADOPTED_ANSWERS, Number(written.numAffectedRows ?? 0));
}
