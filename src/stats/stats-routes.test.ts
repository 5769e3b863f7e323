import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { startTestApp } from '../../test/app.ts';
import { type ChatWorld, newChat, parseSse, startChatWorld } from '../../test/chat-fixtures.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import { finalizeResponse } from '../chat/response-store.ts';
import type { Db } from '../db/database.ts';
import { HISTOGRAM_EDGES_S, rebuildUsageRollups, runUsageBackfill } from '../db/migrations/011-usage-rollups.ts';
import { fillFailedTiming } from '../db/migrations/017-usage-failed-timing.ts';
import { toCsv } from './csv.ts';
import { parseRange } from './range.ts';
import { averageSecondsPerModel, modelDays, promptsPerUsername, summarizeModels, totals, userOverview } from './stats-queries.ts';

/**
 * The page's numbers against the seed's own SQL (feature-notes.md, "Model Usage Stats"), on generated data, after
 * live answers, failures, a sweep and a chat deletion. A date range adds one WHERE on the same columns the
 * rollups count days by (message.dtcreated; response.tinf_start, else its message's time).
 */
const seedPrompts = (where = sql`TRUE`) => sql<{ txusername: string; total_prompts: string }>`
  SELECT u.txusername, COUNT(m.idmessage) AS total_prompts
  FROM chatbot_schema.app_user u
  JOIN chatbot_schema.chat c ON c.idappuser = u.idappuser
  JOIN chatbot_schema.message m ON m.idchat = c.idchat
  WHERE ${where}
  GROUP BY u.txusername
  ORDER BY total_prompts DESC`;
const seedTiming = (where = sql`TRUE`) => sql<{ model_short: string; avg_seconds: string }>`
  SELECT l.txshortname AS model_short, ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::numeric, 3) AS avg_seconds
  FROM chatbot_schema.response r
  JOIN chatbot_schema.llm l ON r.idllm = l.idllm
  WHERE r.tinf_start IS NOT NULL AND r.tinf_end IS NOT NULL AND ${where}
  GROUP BY l.txshortname
  ORDER BY avg_seconds ASC`;

/** No test deletes a user; a deleted user's prompts would count in the totals but not in the seed's join. */
const promptsOfDeletedUsers = async (_db: Db) => 0;

/** Both sides sorted the same way: the seed leaves the order of ties open. */
async function assertSeedEqual(db: Db, span: { from: string | null; to: string | null }, tz = 'UTC'): Promise<void> {
  const inDays = (col: ReturnType<typeof sql>) =>
    span.from === null ? sql`TRUE` : sql`(${col} AT TIME ZONE ${tz})::date BETWEEN ${span.from}::date AND ${span.to}::date`;
  const seedP = (await seedPrompts(inDays(sql`m.dtcreated`)).execute(db)).rows.map((r) => ({ username: r.txusername, prompts: Number(r.total_prompts) }));
  const seedT = (await seedTiming(inDays(sql`r.tinf_start`)).execute(db)).rows.map((r) => ({ model: r.model_short, avgSeconds: String(r.avg_seconds) }));
  const byCount = (a: { username: string; prompts: number }, b: { username: string; prompts: number }) =>
    b.prompts - a.prompts || a.username.localeCompare(b.username);
  const bySeconds = (a: { model: string; avgSeconds: string }, b: { model: string; avgSeconds: string }) =>
    Number(a.avgSeconds) - Number(b.avgSeconds) || a.model.localeCompare(b.model);
  assert.deepEqual([...(await promptsPerUsername(db, span))].sort(byCount), seedP.sort(byCount), 'prompts per user');
  // PGlite hands numeric over as a JavaScript number (0.22), pg as its text ('0.220'): compared as numbers, the page shows 3 decimals.
  const ours = (await averageSecondsPerModel(db, span)).map((m) => ({ model: m.model, avgSeconds: Number(m.avgSeconds).toFixed(3) }));
  assert.deepEqual(
    ours.sort(bySeconds),
    seedT.map((t) => ({ model: t.model, avgSeconds: Number(t.avgSeconds).toFixed(3) })).sort(bySeconds),
    'average per model',
  );
  // The page's one-statement overview says the same, and its totals are the sums.
  const overview = await userOverview(db, span, 100_000);
  assert.deepEqual([...overview.promptsPerUser].sort(byCount), seedP.sort(byCount), 'overview: prompts per user');
  assert.equal(overview.usernames, seedP.length);
  assert.deepEqual(overview.totals, await totals(db, span));
  assert.equal(overview.totals.prompts, seedP.reduce((a, r) => a + r.prompts, 0) + (await promptsOfDeletedUsers(db)));
  // The model table's "Avg" is the same average over the answers that did not fail, and its failed average over the others.
  const models = summarizeModels(await modelDays(db, span));
  const split = await sql<{ model: string; ok: string | null; failed: string | null }>`
    SELECT l.txshortname AS model,
      ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start))) FILTER (WHERE r.txstatus IN ('complete', 'stopped')), 3)::text AS ok,
      ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start))) FILTER (WHERE r.txstatus IN ('error', 'interrupted')), 3)::text AS failed
    FROM chatbot_schema.response r JOIN chatbot_schema.llm l ON r.idllm = l.idllm
    WHERE r.tinf_start IS NOT NULL AND r.tinf_end IS NOT NULL AND ${inDays(sql`r.tinf_start`)}
    GROUP BY l.txshortname`.execute(db);
  for (const t of split.rows) {
    const rows = models.filter((m) => m.model === t.model);
    if (rows.length !== 1) continue;
    assert.equal(rows[0]?.avgSeconds, t.ok === null ? null : Number(t.ok).toFixed(3), `${t.model} (did not fail)`);
    assert.equal(rows[0]?.failedAvgSeconds, t.failed === null ? null : Number(t.failed).toFixed(3), `${t.model} (failed)`);
  }
}

/** RFC 4180, strictly: the test's own reader, so the CSV is checked by parsing it back. */
function parseCsv(text: string): string[][] {
  assert.ok(text.endsWith('\r\n'), 'CRLF line ends');
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        assert.ok(q >= 0, 'closing quote');
        cell += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          cell += '"';
          i++;
        } else break;
      }
    } else {
      const m = /[,\r]/.exec(text.slice(i));
      const end = m ? i + m.index : text.length;
      cell = text.slice(i, end);
      assert.doesNotMatch(cell, /["\n]/, 'a bare quote or line feed must be quoted');
      i = end;
    }
    row.push(cell);
    if (text[i] === ',') i++;
    else {
      assert.equal(text.slice(i, i + 2), '\r\n');
      i += 2;
      rows.push(row);
      row = [];
    }
  }
  return rows;
}

describe('toCsv', () => {
  test('quotes, doubles quotes, keeps line breaks and defuses formulas; numbers stay numbers', () => {
    const cells = ['a,b', 'say "hi"', 'two\r\nlines', '=1+1', '+x', '-y', '@z', '\tt', 'plain', ''];
    const back = parseCsv(
      toCsv(
        ['h'],
        cells.map((c) => [c]),
      ),
    );
    assert.deepEqual(
      back.slice(1).map((r) => r[0]),
      ['a,b', 'say "hi"', 'two\r\nlines', "'=1+1", "'+x", "'-y", "'@z", "'\tt", 'plain', ''],
    );
    assert.deepEqual(parseCsv(toCsv(['n', 'd', 'x'], [[-1.5, new Date('2026-01-02T03:04:05Z'), null]]))[1], ['-1.5', '2026-01-02T03:04:05.000Z', '']);
  });
});

describe('parseRange', () => {
  const now = new Date('2026-03-10T03:30:00Z');
  test('ranges are whole days in the zone, with the range before', () => {
    assert.deepEqual(parseRange({}, 'UTC', now), {
      key: '30d',
      label: 'last 30 days',
      from: '2026-02-09',
      to: '2026-03-10',
      previous: { from: '2026-01-10', to: '2026-02-08' },
    });
    assert.equal(parseRange({ range: '7d' }, 'America/New_York', now).to, '2026-03-09');
    assert.deepEqual(parseRange({ range: '24h' }, 'UTC', now).from, '2026-03-09');
    assert.equal(parseRange({ range: 'all' }, 'UTC', now).previous, null);
    assert.deepEqual(parseRange({ from: '2026-03-01' }, 'UTC', now).previous, { from: '2026-02-19', to: '2026-02-28' });
  });
});

let w: ChatWorld;
let bobsChat = 0;
let db: Db;
const ALL = { from: null, to: null };

/** Users, models, chats, prompts and answers of every status, spread over 40 days, in SQL. */
async function generate(): Promise<void> {
  await sql`
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
    SELECT 'gen' || i, 'gen' || i || '@example.com', '' FROM generate_series(1, 12) i;
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('=cmd|calc', 'formula@example.com', ''), ('silent', 'silent@example.com', '');
    INSERT INTO chatbot_schema.llm (txshortname) VALUES ('alpha'), ('beta'), ('untimed');
  `.execute(db);
  await sql`
    INSERT INTO chatbot_schema.chat (idappuser, idllm)
    SELECT u.idappuser, l.idllm FROM chatbot_schema.app_user u CROSS JOIN chatbot_schema.llm l
    WHERE (u.txusername LIKE 'gen%' OR u.txusername = '=cmd|calc') AND l.txshortname IN ('alpha', 'beta', 'untimed')
      AND (u.idappuser + l.idllm) % 3 <> 0
  `.execute(db);
  await sql`
    INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
    SELECT c.idchat, 'q' || g, now() - make_interval(days => (c.idchat * 7 + g) % 40, secs => (g * 3607) % 86400)
    FROM chatbot_schema.chat c CROSS JOIN generate_series(1, 15) g
    WHERE g <= 3 + c.idchat % 13
  `.execute(db);
  // Answers: timed ones for alpha and beta with varied durations, none timed for 'untimed', every final status.
  await sql`
    INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
    SELECT m.idchat, m.idmessage, c.idllm, 'a', 'a',
      (ARRAY['complete', 'complete', 'complete', 'error', 'stopped', 'interrupted', 'complete'])[1 + m.idmessage % 7],
      CASE WHEN l.txshortname = 'untimed' THEN NULL ELSE m.dtcreated + interval '0.2 s' END,
      CASE WHEN l.txshortname = 'untimed' THEN NULL ELSE m.dtcreated + interval '0.2 s' + make_interval(secs => 0.05 + (m.idmessage % 11) * 0.13) END,
      CASE WHEN l.txshortname = 'untimed' THEN NULL ELSE m.dtcreated + interval '0.2 s' + make_interval(secs => 0.3 + (m.idmessage % 17) * 0.731 + (m.idmessage % 5) * 4.1) END,
      CASE WHEN m.idmessage % 4 = 0 THEN NULL ELSE 10 + m.idmessage % 50 END,
      CASE WHEN m.idmessage % 4 = 0 THEN NULL ELSE 20 + m.idmessage % 300 END
    FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat JOIN chatbot_schema.llm l ON l.idllm = c.idllm
    WHERE m.idmessage % 9 <> 0
  `.execute(db);
}

before(async () => {
  w = await startChatWorld();
  db = w.t.database.db;
  await generate();
});
after(() => w.close());

const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

describe('the seed’s two tables', () => {
  test('equal the seed’s SQL for all time and for a range, on generated data', async () => {
    await assertSeedEqual(db, ALL);
    await assertSeedEqual(db, { from: daysAgo(29), to: today() });
    await assertSeedEqual(db, { from: daysAgo(20), to: daysAgo(10) });
  });

  test('a model without timed answers is missing from the seed table and shows — in the model table', async () => {
    const models = summarizeModels(await modelDays(db, ALL));
    const untimed = models.find((m) => m.model === 'untimed');
    assert.ok(untimed && untimed.responses > 0);
    assert.equal(untimed.avgSeconds, null);
    assert.equal(untimed.p50Seconds, null);
    assert.ok(!(await averageSecondsPerModel(db, ALL)).some((m) => m.model === 'untimed'));
    const page = await w.admin.get('/admin/stats?range=all');
    assert.equal(page.statusCode, 200);
    assert.match(
      page.body,
      /data-label="Model">untimed<\/td>(<td class="text-end" data-label="[^"]+">[\d,]+<\/td>)+<td class="text-end" data-label="Avg \(s\)">—<\/td>/,
    );
  });

  test('statuses are counted each, and percentiles are within one bucket of a direct computation', async () => {
    const exact = await sql<{ model: string; n: string; errors: string; stopped: string; interrupted: string; p50: number; p95: number; ttft: number }>`
      SELECT l.txshortname AS model, count(*) AS n,
        count(*) FILTER (WHERE r.txstatus = 'error') AS errors, count(*) FILTER (WHERE r.txstatus = 'stopped') AS stopped,
        count(*) FILTER (WHERE r.txstatus = 'interrupted') AS interrupted,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::float8 AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::float8 AS p95,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tfirst_token - r.tinf_start)))::float8 AS ttft
      FROM chatbot_schema.response r JOIN chatbot_schema.llm l ON l.idllm = r.idllm
      WHERE r.txstatus IN ('complete', 'error', 'stopped', 'interrupted') AND l.txshortname IN ('alpha', 'beta')
      GROUP BY 1`.execute(db);
    // Percentiles are of the answers that did not fail.
    const timing = await sql<{ model: string; p50: number; p95: number; ttft: number }>`
      SELECT l.txshortname AS model,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::float8 AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::float8 AS p95,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (r.tfirst_token - r.tinf_start)))::float8 AS ttft
      FROM chatbot_schema.response r JOIN chatbot_schema.llm l ON l.idllm = r.idllm
      WHERE r.txstatus IN ('complete', 'stopped') AND l.txshortname IN ('alpha', 'beta')
      GROUP BY 1`.execute(db);
    const models = summarizeModels(await modelDays(db, ALL));
    const bucketOf = (v: number) => HISTOGRAM_EDGES_S.filter((e) => e <= v).length;
    for (const e of exact.rows) {
      const m = models.find((x) => x.model === e.model);
      assert.ok(m, e.model);
      assert.deepEqual([m.responses, m.errors, m.stopped, m.interrupted], [e.n, e.errors, e.stopped, e.interrupted].map(Number), e.model);
      const x = timing.rows.find((t) => t.model === e.model);
      assert.ok(x, e.model);
      for (const [got, want] of [
        [m.p50Seconds, x.p50],
        [m.p95Seconds, x.p95],
        [m.medianTtftSeconds, x.ttft],
      ] as const) {
        assert.ok(got !== null);
        assert.ok(Math.abs(bucketOf(got) - bucketOf(want)) <= 1, `${e.model}: ${got} vs ${want}`);
      }
    }
  });
});

describe('failed answers', () => {
  test('a model whose answers all failed fast is not the fastest: its timing is apart; the design note’s table keeps its definition', async () => {
    await sql`
      INSERT INTO chatbot_schema.llm (txshortname) VALUES ('broken');
      INSERT INTO chatbot_schema.chat (idappuser, idllm)
        SELECT u.idappuser, l.idllm FROM chatbot_schema.app_user u, chatbot_schema.llm l WHERE u.txusername = 'gen1' AND l.txshortname = 'broken';
      INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
        SELECT c.idchat, 'q' || g, now() - make_interval(mins => g) FROM chatbot_schema.chat c JOIN chatbot_schema.llm l USING (idllm), generate_series(1, 4) g
        WHERE l.txshortname = 'broken';
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start, tinf_end)
        SELECT m.idchat, m.idmessage, c.idllm, '', '', CASE WHEN m.txmessage = 'q4' THEN 'interrupted' ELSE 'error' END, m.dtcreated, m.dtcreated + interval '0.011 s'
        FROM chatbot_schema.message m JOIN chatbot_schema.chat c USING (idchat) JOIN chatbot_schema.llm l ON l.idllm = c.idllm WHERE l.txshortname = 'broken';
    `.execute(db);
    const models = summarizeModels(await modelDays(db, ALL));
    const broken = models.find((m) => m.model === 'broken');
    assert.ok(broken);
    assert.deepEqual([broken.avgSeconds, broken.p50Seconds, broken.failedAvgSeconds, broken.failedTimed], [null, null, '0.011', 4]);
    assert.notEqual(models[0]?.model, 'broken');
    // The design note's table: every timed answer, so there it is 0.011 (and says so).
    assert.equal((await averageSecondsPerModel(db, ALL)).find((m) => m.model === 'broken')?.avgSeconds, '0.011');
    const page = (await w.admin.get('/admin/stats?range=all')).body;
    assert.match(page, /failed ones included/);
    const row = /<tr><td class="" data-label="Model">broken<\/td>([\s\S]*?)<\/tr>/.exec(page)?.[1] ?? '';
    assert.match(row, /data-label="Avg \(s\)">—</);
    assert.match(row, /data-label="Failed: avg \(s\)">0\.011</);
    // The rollups the triggers kept are what a recount from the rows gives (migration 017's columns included).
    const before = (await rollupsByKey(db)).model;
    await rebuildUsageRollups(db, 'UTC');
    assert.deepEqual((await rollupsByKey(db)).model, before);
    // An upgraded database: migration 017 fills the new columns of the rows already counted from the failed answers.
    await sql`UPDATE chatbot_schema.usage_day_model SET ntimed_failed = 0, sum_inf_failed_s = 0, ntoken_timed_failed_tokens = 0,
      sum_token_gen_failed_s = 0, hist_inf_failed = array_fill(0, ARRAY[${HISTOGRAM_EDGES_S.length + 1}::int]), hist_ttft_failed = array_fill(0, ARRAY[${HISTOGRAM_EDGES_S.length + 1}::int])`.execute(
      db,
    );
    await fillFailedTiming(db);
    assert.deepEqual((await rollupsByKey(db)).model, before);
  });
});

describe('wording', () => {
  test('no "seed" on the page; a custom range is said once; the charts have their CSV', async () => {
    const page = (await w.admin.get(`/admin/stats?from=${daysAgo(6)}&to=${today()}`)).body;
    assert.doesNotMatch(page, /seed/i);
    const label = /data-testid="range-label">([\s\S]*?)<\/p>/.exec(page)?.[1] ?? '';
    assert.equal(label.split(daysAgo(6)).length - 1, 1, label);
    assert.match(page, /charts[^<]*<a[^>]*table=daily">CSV<\/a>/);
  });
});

describe('the rollups follow the writes', () => {
  test('a live answer, a failed one and a sweep', async () => {
    const before = await promptsPerUsername(db, ALL);
    const chatId = await newChat(w.user, w.modelId);
    bobsChat = chatId;
    for (const content of ['hello', 'again']) {
      const res = await w.user.postJson(`/api/chats/${chatId}/messages`, { content });
      assert.equal(res.statusCode, 200);
      assert.ok(parseSse(res.body).some((e) => e.event === 'done'));
    }
    await assertSeedEqual(db, ALL);
    await assertSeedEqual(db, { from: today(), to: today() });
    const bob = (rows: { username: string; prompts: number }[]) => rows.find((r) => r.username === 'Bob')?.prompts ?? 0;
    assert.equal(bob(await promptsPerUsername(db, ALL)), bob(before) + 2);

    // A pending answer ended by finalizeResponse with an error, and one ended by a direct sweep-style update.
    const pending = await sql<{ idresponse: number }>`
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txcontent, txmarkdown, txstatus, tinf_start)
      SELECT idchat, idmessage, ${w.modelId}, '', '', 'pending', now() - interval '2 s' FROM chatbot_schema.message WHERE idchat = ${chatId}
      RETURNING idresponse`.execute(db);
    const [first, second] = pending.rows;
    assert.ok(first && second);
    await finalizeResponse(db, first.idresponse, { status: 'error', markdown: '', html: '', error: 'boom', promptTokens: null, completionTokens: null });
    await sql`UPDATE chatbot_schema.response SET txstatus = 'interrupted', tinf_end = now() WHERE idresponse = ${second.idresponse}`.execute(db);
    await assertSeedEqual(db, ALL);
    const fake = summarizeModels(await modelDays(db, ALL)).find((m) => m.modelId === w.modelId);
    assert.ok(fake && fake.errors >= 1 && fake.interrupted >= 1);
  });

  test('a backdated message moves to its new day', async () => {
    const m = await sql<{ idmessage: number }>`SELECT idmessage FROM chatbot_schema.message ORDER BY idmessage LIMIT 1`.execute(db);
    await sql`UPDATE chatbot_schema.message SET dtcreated = dtcreated - interval '3 days' WHERE idmessage = ${m.rows[0]?.idmessage}`.execute(db);
    await sql`UPDATE chatbot_schema.response SET tinf_start = tinf_start - interval '3 days', tinf_end = tinf_end - interval '3 days' WHERE idmessage = ${m.rows[0]?.idmessage}`.execute(
      db,
    );
    await assertSeedEqual(db, ALL);
    await assertSeedEqual(db, { from: daysAgo(12), to: daysAgo(2) });
  });
});

describe('GET /admin/stats', () => {
  test('shows the range, the time zone and every table; links users to their admin page', async () => {
    const res = await w.admin.get('/admin/stats');
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /last 30 days/);
    assert.match(res.body, /counted in <strong>UTC<\/strong>/);
    for (const id of ['totals', 'prompts-per-user', 'average-per-model', 'models', 'users']) assert.match(res.body, new RegExp(`data-testid="${id}"`));
    assert.match(res.body, /href="\/admin\/users\/\d+"/);
    assert.match(res.body, /<svg[^>]*class="stats-svg"/);
    assert.doesNotMatch(res.body, /style=/);
  });

  test('says "statistics are being computed (N %)" while the backfill runs, and nothing once it is done', async () => {
    await sql`UPDATE chatbot_schema.usage_rollup_state SET nbackfill_cursor = 1, nbackfill_upto = 4`.execute(db);
    try {
      assert.match((await w.admin.get('/admin/stats')).body, /Statistics are being computed \(25 %\)/);
    } finally {
      await sql`UPDATE chatbot_schema.usage_rollup_state SET nbackfill_cursor = NULL`.execute(db);
    }
    assert.doesNotMatch((await w.admin.get('/admin/stats')).body, /being computed/);
  });

  test('says "N % of adopted answers re-rendered" while that catch-up runs, and nothing once it is done', async () => {
    await sql`UPDATE chatbot_schema.catch_up SET ntotal = 1000000, ndone = 372000 WHERE txjob = 'adopted-answers'`.execute(db);
    try {
      assert.match((await w.admin.get('/admin/stats')).body, /37 % of adopted answers re-rendered/);
    } finally {
      await sql`UPDATE chatbot_schema.catch_up SET ntotal = 1000000, ndone = 1000000 WHERE txjob = 'adopted-answers'`.execute(db);
    }
    assert.doesNotMatch((await w.admin.get('/admin/stats')).body, /re-rendered/);
  });

  test('refuses bad and repeated range values with 400 and a message', async () => {
    for (const q of [
      'range=1y',
      'range=7d&range=30d',
      'from=2026-02-31',
      'from=2026-03-02&to=2026-03-01',
      'range=7d&from=2026-01-01',
      'to=2026-01-01',
      'from=yesterday',
      'format=xml',
      'format=csv',
      'format=csv&table=nope',
      'bogus=1',
      'from=1000-01-01&to=2026-01-01',
    ]) {
      const res = await w.admin.get(`/admin/stats?${q}`);
      assert.equal(res.statusCode, 400, q);
      assert.ok(res.body.length > 0 && !/Internal/.test(res.body), q);
    }
  });

  test('dates outside 1970–9999 (year 0, or a comparison period in year 0) are a 400 with a message on every stats route', async () => {
    const u = await sql<{ idappuser: number }>`SELECT idappuser FROM chatbot_schema.app_user WHERE txusername = 'gen3'`.execute(db);
    const id = u.rows[0]?.idappuser;
    for (const range of ['from=0000-01-01&to=0000-01-05', 'from=0001-01-01&to=0001-01-05', 'from=1969-12-31&to=1970-01-05']) {
      for (const [client, path] of [
        [w.user, `/settings/usage?${range}`],
        [w.user, `/settings/usage?${range}&format=csv`],
        [w.admin, `/admin/stats?${range}`],
        [w.admin, `/admin/stats?${range}&format=csv&table=models`],
        [w.admin, `/admin/stats/users/${id}?${range}`],
        [w.admin, `/admin/stats/users/${id}?${range}&format=csv`],
      ] as const) {
        const res = await client.get(path);
        assert.equal(res.statusCode, 400, path);
        assert.match(res.body, /between 1970-01-01 and 9999-12-31/, path);
      }
    }
  });

  test('random date ranges on every stats route: a page or a 400, never a 5xx', async () => {
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    const date = fc
      .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }))
      .map(([y, m, d]) => `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`);
    const edge = fc.constantFrom('0000-01-01', '0001-01-01', '1969-12-31', '1970-01-01', '1979-12-31', '9999-12-31', '9990-01-01');
    const path = fc.constantFrom('/admin/stats', '/admin/stats/users/1', '/settings/usage');
    await fc.assert(
      fc.asyncProperty(path, fc.oneof(date, edge), fc.oneof(date, edge), fc.boolean(), async (p, from, to, csv) => {
        const query = `from=${from}&to=${to}${csv ? (p === '/admin/stats' ? '&format=csv&table=models' : '&format=csv') : ''}`;
        const res = await (p === '/settings/usage' ? w.user : w.admin).get(`${p}?${query}`);
        assert.ok(res.statusCode === 200 || res.statusCode === 400 || res.statusCode === 404, `${p}?${query}: ${res.statusCode}`);
      }),
      { numRuns: 60 },
    );
  });

  test('a reversed or bad range shows the same page again, 400, with the message beside the dates (not a dead end)', async () => {
    const u = await sql<{ idappuser: number }>`SELECT idappuser FROM chatbot_schema.app_user WHERE txusername = 'gen3'`.execute(db);
    const pages = [
      [w.admin, '/admin/stats', /<h1[^>]*>Usage &amp; inference statistics<\/h1>/],
      [w.admin, `/admin/stats/users/${u.rows[0]?.idappuser}`, /<h1[^>]*>Chats of gen3<\/h1>/],
      [w.user, '/settings/usage', /<h1[^>]*>Your usage<\/h1>/],
    ] as const;
    for (const [client, path, heading] of pages) {
      for (const [query, message, field] of [
        ['from=2026-03-02&to=2026-03-01', /From \(2026-03-02\) is after To \(2026-03-01\)/, 'to'],
        ['from=0000-01-01&to=0000-01-05', /between 1970-01-01 and 9999-12-31/, 'from'],
        ['from=2026-02-31', /a date like/, 'from'],
      ] as const) {
        const res = await client.get(`${path}?${query}`);
        assert.equal(res.statusCode, 400, `${path}?${query}`);
        assert.match(res.body, heading, `${path}?${query}`);
        assert.doesNotMatch(res.body, /Request refused|Go to the start page/);
        assert.match(res.body, message, `${path}?${query}`);
        // The field the message is about is marked and points at it; what was typed stays in the form.
        assert.match(res.body, new RegExp(`<input[^>]*name="${field}"[^>]*is-invalid|<input[^>]*is-invalid[^>]*name="${field}"`), `${path}?${query}`);
        assert.match(res.body, /aria-describedby="range-error"/);
        assert.match(res.body, new RegExp(`value="${query.slice(5, 15)}"`));
      }
      // A CSV link asked for a file: the plain 400 with the message stays.
      const csv = await client.get(`${path}?from=2026-03-02&to=2026-03-01&format=csv${path === '/admin/stats' ? '&table=models' : ''}`);
      assert.equal(csv.statusCode, 400);
      assert.match(csv.body, /is after/);
    }
  });

  test('a user gets 403, and sees only their own /settings/usage', async () => {
    assert.equal((await w.user.get('/admin/stats')).statusCode, 403);
    assert.equal((await w.user.get('/admin/stats/users/1')).statusCode, 403);
    const mine = await w.user.get('/settings/usage?range=all&format=csv');
    assert.equal(mine.statusCode, 200);
    const rows = parseCsv(mine.body);
    const own = await sql<{
      n: string;
    }>`SELECT coalesce(sum(d.nprompts), 0) AS n FROM chatbot_schema.usage_day_user d JOIN chatbot_schema.app_user u ON u.idappuser = d.idappuser WHERE u.txusername = 'Bob'`.execute(
      db,
    );
    assert.equal(
      rows.slice(1).reduce((a, r) => a + Number(r[2]), 0),
      Number(own.rows[0]?.n),
    );
    const page = await w.user.get('/settings/usage?range=all');
    assert.equal(page.statusCode, 200);
    assert.doesNotMatch(page.body, /gen\d/);
  });

  test('the per-chat drill-down lists a user’s chats with prompts, answers and average time', async () => {
    const u = await sql<{ idappuser: number }>`SELECT idappuser FROM chatbot_schema.app_user WHERE txusername = 'gen3'`.execute(db);
    const id = u.rows[0]?.idappuser;
    const res = await w.admin.get(`/admin/stats/users/${id}?range=all`);
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /Chats of gen3/);
    const csv = parseCsv((await w.admin.get(`/admin/stats/users/${id}?range=all&format=csv`)).body);
    const seed = await sql<{
      n: string;
    }>`SELECT count(*) AS n FROM chatbot_schema.message m JOIN chatbot_schema.chat c USING (idchat) WHERE c.idappuser = ${id}`.execute(db);
    assert.equal(
      csv.slice(1).reduce((a, r) => a + Number(r[3]), 0),
      Number(seed.rows[0]?.n),
    );
    assert.equal((await w.admin.get('/admin/stats/users/999999')).statusCode, 404);
  });
});

describe('CSV', () => {
  test('every table parses back with its header, the seed’s numbers and formula cells escaped', async () => {
    for (const table of ['prompts_per_user', 'average_per_model', 'models', 'users', 'daily']) {
      const res = await w.admin.get(`/admin/stats?range=all&format=csv&table=${table}`);
      assert.equal(res.statusCode, 200, table);
      assert.match(String(res.headers['content-type']), /^text\/csv/);
      const rows = parseCsv(res.body);
      assert.ok(rows.length >= 2, table);
      assert.ok(
        rows.every((r) => r.length === rows[0]?.length),
        table,
      );
      for (const r of rows) for (const cell of r) assert.doesNotMatch(cell, /^[=+@]/, `${table}: ${cell}`);
    }
    const prompts = parseCsv((await w.admin.get('/admin/stats?range=all&format=csv&table=prompts_per_user')).body);
    assert.deepEqual(prompts[0], ['user', 'total_prompts']);
    assert.ok(prompts.some((r) => r[0] === "'=cmd|calc"));
    const seed = (await seedPrompts().execute(db)).rows;
    assert.equal(prompts.length - 1, seed.length);
    const timing = parseCsv((await w.admin.get('/admin/stats?range=all&format=csv&table=average_per_model')).body);
    const seedT = (await seedTiming().execute(db)).rows;
    assert.deepEqual(
      timing
        .slice(1)
        .map((r) => [r[0], Number(r[1])])
        .sort(),
      seedT.map((r) => [r.model_short, Number(r.avg_seconds)]).sort(),
    );
  });
});

describe('CSV figures', () => {
  test('are rounded as on the page: seconds to 3 decimals, tokens per second to 1, the same strings in both', async () => {
    const models = parseCsv((await w.admin.get('/admin/stats?range=all&format=csv&table=models')).body);
    const head = models[0] ?? [];
    const col = (name: string) => head.indexOf(name);
    const secondsCols = ['avg_seconds', 'p50_seconds', 'p95_seconds', 'median_ttft_seconds'].map(col);
    const page = (await w.admin.get('/admin/stats?range=all')).body;
    let checked = 0;
    for (const r of models.slice(1)) {
      for (const c of secondsCols) assert.match(r[c] ?? '', /^(\d+\.\d{3})?$/, `${head[c]} ${r[c]}`);
      assert.match(r[col('tokens_per_second')] ?? '', /^(\d+\.\d)?$/, `tokens_per_second ${r[col('tokens_per_second')]}`);
      const p50 = r[col('p50_seconds')];
      if (p50 && Number(p50) < HISTOGRAM_EDGES_S[HISTOGRAM_EDGES_S.length - 1]!) {
        assert.ok(page.includes(`data-label="p50 (s)">${p50}</td>`), `the page shows ${r[0]}'s p50 as the CSV does (${p50})`);
        checked++;
      }
    }
    assert.ok(checked > 0);
    for (const r of parseCsv((await w.admin.get('/admin/stats?range=all&format=csv&table=daily')).body).slice(1)) {
      assert.match(r[4] ?? '', /^(\d+\.\d{3})?$/, `daily p50 ${r[4]}`);
    }
  });
});

describe('STATS_TIMEZONE', () => {
  test('days are counted in the zone: a prompt at 23:30 in New York belongs to that day, not to the UTC one', async () => {
    // 2026-03-10T03:30Z is 2026-03-09 23:30 in New York (EDT since 8 March).
    const chat = await sql<{ idchat: number }>`SELECT idchat FROM chatbot_schema.chat ORDER BY idchat LIMIT 1`.execute(db);
    await sql`INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated) VALUES (${chat.rows[0]?.idchat}, 'late', '2026-03-10T03:30:00Z')`.execute(db);
    const ny = await startTestApp({ STATS_TIMEZONE: 'America/New_York' }, w.t.database);
    try {
      await runUsageBackfill(db);
      const state = await sql<{ txtimezone: string }>`SELECT txtimezone FROM chatbot_schema.usage_rollup_state`.execute(db);
      assert.equal(state.rows[0]?.txtimezone, 'America/New_York');
      await assertSeedEqual(db, ALL, 'America/New_York');
      await assertSeedEqual(db, { from: '2026-03-09', to: '2026-03-09' }, 'America/New_York');
      const on9 = await promptsPerUsername(db, { from: '2026-03-09', to: '2026-03-09' });
      const on10 = await promptsPerUsername(db, { from: '2026-03-10', to: '2026-03-10' });
      assert.equal(
        on9.reduce((a, r) => a + r.prompts, 0),
        1,
      );
      assert.equal(
        on10.reduce((a, r) => a + r.prompts, 0),
        0,
      );
    } finally {
      await ny.app.close();
    }
    // Back in UTC (a restart with the old zone rebuilds again): the same prompt is on the 10th.
    const utc = await startTestApp({ STATS_TIMEZONE: 'UTC' }, w.t.database);
    await runUsageBackfill(db);
    await utc.app.close();
    const on10 = await promptsPerUsername(db, { from: '2026-03-10', to: '2026-03-10' });
    assert.equal(
      on10.reduce((a, r) => a + r.prompts, 0),
      1,
    );
    await assertSeedEqual(db, ALL);
  });
});

describe('deleting a chat', () => {
  test('keeps its counts in the statistics (the seed’s SQL loses them)', async () => {
    const bob = (rows: { username: string; prompts: number }[]) => rows.find((r) => r.username === 'Bob')?.prompts ?? 0;
    const before = bob(await promptsPerUsername(db, ALL));
    assert.ok(before >= 2);
    const del = await w.user.app.inject({
      method: 'DELETE',
      url: `/api/chats/${bobsChat}`,
      headers: { cookie: w.user.cookieHeader(), 'x-csrf-token': w.user.csrf },
    });
    assert.ok(del.statusCode < 300, del.body);
    assert.equal(bob(await promptsPerUsername(db, ALL)), before);
    const seed = (await seedPrompts().execute(db)).rows.find((r) => r.txusername === 'Bob');
    assert.equal(Number(seed?.total_prompts ?? 0), before - 2);
  });
});
