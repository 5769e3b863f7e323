import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openTestDatabase } from '../../test/database.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { runUsageBackfill, usageBackfillPercent } from '../db/migrations/011-usage-rollups.ts';
import { averageSecondsPerModel, promptsPerUsername, totals } from './stats-queries.ts';

/** A Flask-era database (test/fixtures/flask-prototype.sql) shows the seed's numbers at once: the migration backfills. */
const fixture = readFileSync(path.join(import.meta.dirname, '../../test/fixtures/flask-prototype.sql'), 'utf8');
const ALL = { from: null, to: null };
let database: OpenedDatabase;

const seedPrompts = sql<{ txusername: string; total_prompts: string }>`
  SELECT u.txusername, COUNT(m.idmessage) AS total_prompts
  FROM chatbot_schema.app_user u
  JOIN chatbot_schema.chat c ON c.idappuser = u.idappuser
  JOIN chatbot_schema.message m ON m.idchat = c.idchat
  GROUP BY u.txusername
  ORDER BY total_prompts DESC`;
const seedTiming = sql<{ model_short: string; avg_seconds: string }>`
  SELECT l.txshortname AS model_short, ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::numeric, 3) AS avg_seconds
  FROM chatbot_schema.response r
  JOIN chatbot_schema.llm l ON r.idllm = l.idllm
  WHERE r.tinf_start IS NOT NULL AND r.tinf_end IS NOT NULL
  GROUP BY l.txshortname
  ORDER BY avg_seconds ASC`;

async function assertSeedEqual(): Promise<void> {
  const db = database.db;
  const seedP = (await seedPrompts.execute(db)).rows.map((r) => ({ username: r.txusername, prompts: Number(r.total_prompts) }));
  assert.ok(seedP.length > 0);
  const sortP = (rows: { username: string; prompts: number }[]) => [...rows].sort((a, b) => b.prompts - a.prompts || a.username.localeCompare(b.username));
  assert.deepEqual(sortP(await promptsPerUsername(db, ALL)), sortP(seedP));
  const seedT = (await seedTiming.execute(db)).rows.map((r) => ({ model: r.model_short, avgSeconds: Number(r.avg_seconds).toFixed(3) }));
  const ours = (await averageSecondsPerModel(db, ALL)).map((m) => ({ model: m.model, avgSeconds: Number(m.avgSeconds).toFixed(3) }));
  assert.deepEqual(ours, seedT);
}

before(async () => {
  database = await openTestDatabase({ migrate: false });
  await sql.raw(fixture).execute(database.db);
  await migrateToLatest(database.db);
  // The app runs this after start; a test waits for it.
  await runUsageBackfill(database.db);
});
after(() => database.close());

test('adopted prompts and answers are in the statistics once the backfill after start has run', async () => {
  assert.equal(await usageBackfillPercent(database.db), null);
  await assertSeedEqual();
  const t = await totals(database.db, ALL);
  const counts = await sql<{
    m: string;
    r: string;
  }>`SELECT (SELECT count(*) FROM chatbot_schema.message) AS m, (SELECT count(*) FROM chatbot_schema.response) AS r`.execute(database.db);
  assert.equal(t.prompts, Number(counts.rows[0]?.m));
  assert.equal(t.answers, Number(counts.rows[0]?.r));
  // The prototype never timed its answers: the seed's second table is empty, and so is ours.
  assert.deepEqual(await averageSecondsPerModel(database.db, ALL), []);
});

test('adopted answers given timestamps later (the seed’s own ALTER then UPDATE) are re-counted with them', async () => {
  await sql`UPDATE chatbot_schema.response SET tinf_start = now() - make_interval(secs => idresponse * 1.25), tinf_end = now()`.execute(database.db);
  await assertSeedEqual();
  assert.equal((await averageSecondsPerModel(database.db, ALL)).length, 2);
});
