import { type Kysely, sql } from 'kysely';

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
 * The re-rendering itself is not here: Kysely runs all pending migrations in one transaction, before the server
 * listens, and a million answers take about 15 minutes to render. It is a catch-up job of the chat slice
 * (src/chat/adopted-answers.ts) that the app runs after it listens, in batches that each commit (decision record 013).
 * Until a row is done, listTurns renders its markdown on every read rather than send its HTML.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE chatbot_schema.response ADD COLUMN IF NOT EXISTS is_html_ours BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE chatbot_schema.response ALTER COLUMN is_html_ours SET DEFAULT TRUE;
    -- Its index (what is left to re-render) is built after the server listens: src/db/deferred-indexes.ts.
  `.execute(db);
}
