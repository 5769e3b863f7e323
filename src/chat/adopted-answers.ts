import { sql } from 'kysely';
import { CATCH_UP_ADOPTED_ANSWERS, type CatchUpJob, catchUpPercent, countCatchUpDone, countCatchUpTotal } from '../db/catch-up.ts';
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
      const lastId = await db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom('chatbot_schema.response')
          .select(['idresponse', 'txmarkdown', 'txcontent'])
          .where(sql<boolean>`NOT is_html_ours`)
          .where('idresponse', '>', afterId)
          .orderBy('idresponse')
          .limit(batchSize)
          .forUpdate()
          .skipLocked()
          .execute();
        if (rows.length === 0) return null;
        const html: string[] = [];
        let slice = performance.now();
        for (const r of rows) {
          html.push(render(r.txmarkdown, r.txcontent, r.idresponse));
          if (performance.now() - slice > RENDER_SLICE_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            slice = performance.now();
          }
        }
        await sql`
          UPDATE chatbot_schema.response AS r SET txcontent = v.html, is_html_ours = TRUE
          FROM unnest(${rows.map((r) => r.idresponse)}::int[], ${html}::text[]) AS v(idresponse, html)
          WHERE r.idresponse = v.idresponse`.execute(trx);
        await countCatchUpDone(trx, CATCH_UP_ADOPTED_ANSWERS, rows.length);
        return rows[rows.length - 1]?.idresponse ?? null;
      });
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
