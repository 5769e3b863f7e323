import { type Kysely, sql } from 'kysely';
import { renderAdoptedAnswer } from '../../chat/markdown.ts';
import type { Db } from '../database.ts';

/**
 * Answers Parley did not render are not trusted. The Flask prototype's Python-Markdown passed raw HTML through,
 * so an adopted `response.txcontent` may hold `<script>` or `onerror=` that a model (or a prompt injection) wrote.
 *
 * `is_html_ours` says whose HTML a row holds. Adding the column with DEFAULT FALSE marks every existing row as
 * not ours (PostgreSQL stores that default once, without rewriting the table, so this is quick on a big database);
 * the default then becomes TRUE, so every row Parley inserts from now on (begin_answer) is ours. Rows Parley wrote
 * before this migration are marked too: re-rendering them from their own markdown gives the same HTML, and
 * nothing would tell them apart from the prototype's reliably.
 *
 * The re-rendering itself is not in `up`: Kysely runs all pending migrations in one transaction, so a big
 * prototype database would be re-rendered all or nothing, and an interrupted start would begin again from zero.
 * migrateToLatest calls rerenderAdoptedAnswers after the migrations commit instead, in batches that each commit.
 * Until a row is done, listTurns renders its markdown on every read rather than send its HTML.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.response ADD COLUMN IF NOT EXISTS is_html_ours BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE chatbot_schema.response ALTER COLUMN is_html_ours SET DEFAULT TRUE;
    -- What is left to re-render, found at once at every start once the answer is "nothing".
    CREATE INDEX IF NOT EXISTS response_html_not_ours_idx ON chatbot_schema.response (idresponse) WHERE NOT is_html_ours;
  `.execute(db);
}

/** Rows per transaction: big enough to finish a million rows in minutes, small enough that an interruption costs little. */
export const RERENDER_BATCH_ROWS = 500;

/**
 * Re-renders every answer whose HTML is not ours from its markdown (renderAdoptedAnswer) and marks it as ours,
 * in batches that each commit, so that it resumes where it stopped and a second run does nothing. Returns how
 * many rows it re-rendered. `maxBatches` exists for tests that simulate an interruption.
 *
 * Several processes may start at once: FOR UPDATE SKIP LOCKED gives each batch to one of them, and a row that
 * another transaction holds (one being re-rendered elsewhere, an answer being written) is left for the next run;
 * until then it is rendered on read. The locks are on old rows nobody else writes, held while one batch renders.
 */
export async function rerenderAdoptedAnswers(db: Db, opts: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
  const batchSize = opts.batchSize ?? RERENDER_BATCH_ROWS;
  const maxBatches = opts.maxBatches ?? Number.POSITIVE_INFINITY;
  let afterId = 0;
  let rendered = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
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
      const ids = rows.map((r) => r.idresponse);
      const html = rows.map((r) => renderAdoptedAnswer(r.txmarkdown, r.txcontent));
      await sql`
        UPDATE chatbot_schema.response AS r SET txcontent = v.html, is_html_ours = TRUE
        FROM unnest(${ids}::int[], ${html}::text[]) AS v(idresponse, html)
        WHERE r.idresponse = v.idresponse`.execute(trx);
      rendered += rows.length;
      return ids[ids.length - 1] ?? null;
    });
    if (lastId === null) break;
    afterId = lastId;
  }
  return rendered;
}
