import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { buildApp } from '../src/app.ts';
import { createSession } from '../src/auth/sessions.ts';
import { beginAnswer } from '../src/chat/chat-queries.ts';
import { finalizeResponse } from '../src/chat/response-store.ts';
import { loadConfig } from '../src/config.ts';
import type { Db } from '../src/db/database.ts';
import { rebuildUsageRollups } from '../src/db/migrations/011-usage-rollups.ts';
import { type DbKind, median, openBenchDatabase, type Row } from './lib.ts';

/**
 * `npm run bench stats`: /admin/stats server time (app.inject: routing, guards, queries, rendering; no socket) on
 * STATS_BENCH_MESSAGES messages (default 1,000,000) with one answer each, across 10,000 users and 5 models over a
 * year (each chat a conversation: its prompts a minute apart on one day), for 30 days and for all time; the seed's two raw queries on the same data; the backfill (the migration's
 * rebuild) time; then the same after doubling the data; and what the rollup triggers add to begin_answer plus
 * finalizeResponse (one prompt and its answer), measured with the triggers on and off. The page is also timed filtered to
 * a group holding all 10,000 users (`?group=`, issue 19: the heaviest group there can be on this data).
 */
const MESSAGES = Number(process.env.STATS_BENCH_MESSAGES ?? 1_000_000);
const USERS = 10_000;
const MODELS = 5;
const DAYS = 365;
const PAGE_RUNS = 15;

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function medianMs(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm: the first run prepares statements and fills caches
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeMs(fn));
  return median(times);
}

/** `count` prompts with answers on chats of the existing users, spread over DAYS days; foreign-key and rollup triggers off, like a restore. */
export async function fillMessages(db: Db, count: number, batch: number): Promise<void> {
  const chatsPerUser = 10;
  const perChat = Math.max(1, Math.round(count / (USERS * chatsPerUser)));
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL session_replication_role = replica`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle, dtcreated, dtupdated)
      SELECT u.idappuser, l.first + (u.idappuser + g) % ${MODELS}::int, 'Chat ' || g || ' of batch ' || ${batch}::int, now(), now()
      FROM chatbot_schema.app_user u CROSS JOIN generate_series(1, ${chatsPerUser}::int) g
      CROSS JOIN (SELECT min(idllm) AS first FROM chatbot_schema.llm) l
      WHERE u.txusername LIKE 'u%'`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
      SELECT c.idchat, 'Question ' || g, now() - make_interval(days => (c.idchat * 31) % ${DAYS}::int, secs => (c.idchat * 977) % 80000 - g * 60)
      FROM chatbot_schema.chat c CROSS JOIN generate_series(1, ${perChat}::int) g
      WHERE c.txtitle LIKE ${`% of batch ${batch}`}`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
      SELECT m.idchat, m.idmessage, c.idllm, 'An answer.', '<p>An answer.</p>',
        (ARRAY['complete','complete','complete','complete','complete','complete','complete','error','stopped','interrupted'])[1 + m.idmessage % 10],
        m.dtcreated + interval '0.1 s',
        m.dtcreated + interval '0.1 s' + make_interval(secs => 0.1 + (m.idmessage % 13) * 0.07 * (1 + c.idllm % ${MODELS}::int)),
        m.dtcreated + interval '0.1 s' + make_interval(secs => 0.5 + (m.idmessage % 97) * 0.09 * (1 + c.idllm % ${MODELS}::int)),
        20 + m.idmessage % 400, 50 + m.idmessage % 900
      FROM chatbot_schema.message m JOIN chatbot_schema.chat c ON c.idchat = m.idchat
      WHERE c.txtitle LIKE ${`% of batch ${batch}`}`.execute(trx);
  });
  await sql`ANALYZE`.execute(db);
}

export async function benchStats(kind: DbKind): Promise<Row[]> {
  const database = await openBenchDatabase(kind);
  const db = database.db;
  const rows: Row[] = [];
  try {
    await sql`
      INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel)
      SELECT 'model-' || i, 'http://127.0.0.1:9/v1', 'm' || i FROM generate_series(1, ${MODELS}::int) i`.execute(db);
    await sql`
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
      SELECT 'u' || i, 'u' || i || '@example.com', NULL FROM generate_series(1, ${USERS}::int) i`.execute(db);
    const admin = await sql<{ idappuser: number }>`
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('bench-admin', 'admin@example.com', NULL) RETURNING idappuser`.execute(db);
    const adminId = admin.rows[0]?.idappuser ?? 0;
    await sql`INSERT INTO chatbot_schema.user_role (idappuser, idrole) VALUES (${adminId}, 1), (${adminId}, 2) ON CONFLICT DO NOTHING`.execute(db);
    const cookie = `parley_session=${await createSession(db, adminId, {})}`;
    const config = loadConfig({
      APP_SECRET: 'bench-secret-that-is-long-enough-0123456789',
      DATA_DIR: mkdtempSync(path.join(tmpdir(), 'parley-bench-')),
      LOG_LEVEL: 'silent',
    });
    const app = await buildApp({ config, db });
    await app.ready();
    // A group of every one of the 10,000 users: its page reads the members' per-user rows (issue 19).
    const group = await sql<{ idgroup: number }>`
      INSERT INTO chatbot_schema.user_group (txname, nprompts_per_day, ntokens_per_month) VALUES ('Everyone', 100, 1000000) RETURNING idgroup`.execute(db);
    const groupId = group.rows[0]?.idgroup ?? 0;
    await sql`INSERT INTO chatbot_schema.user_group_member (idgroup, idappuser) SELECT ${groupId}, idappuser FROM chatbot_schema.app_user WHERE txusername LIKE 'u%'`.execute(
      db,
    );
    const page = (range: string) => async () => {
      const res = await app.inject({ method: 'GET', url: `/admin/stats?range=${range}`, headers: { cookie } });
      if (res.statusCode !== 200) throw new Error(`/admin/stats answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
    };
    const seedQueries = async () => {
      await sql`SELECT u.txusername, COUNT(m.idmessage) AS total_prompts FROM chatbot_schema.app_user u
        JOIN chatbot_schema.chat c ON c.idappuser = u.idappuser JOIN chatbot_schema.message m ON m.idchat = c.idchat
        GROUP BY u.txusername ORDER BY total_prompts DESC`.execute(db);
      await sql`SELECT l.txshortname AS model_short, ROUND(AVG(EXTRACT(EPOCH FROM (r.tinf_end - r.tinf_start)))::numeric, 3) AS avg_seconds
        FROM chatbot_schema.response r JOIN chatbot_schema.llm l ON r.idllm = l.idllm
        WHERE r.tinf_start IS NOT NULL AND r.tinf_end IS NOT NULL GROUP BY l.txshortname ORDER BY avg_seconds ASC`.execute(db);
    };

    for (const [batch, label] of [
      [1, '1×'],
      [2, '2×'],
    ] as const) {
      const fillMs = await timeMs(() => fillMessages(db, MESSAGES, batch));
      const backfillMs = await timeMs(() => rebuildUsageRollups(db, 'UTC'));
      const counts = await sql<{ m: string; d: string; u: string }>`SELECT (SELECT count(*) FROM chatbot_schema.message) AS m,
        (SELECT count(*) FROM chatbot_schema.usage_day_model) AS d, (SELECT count(*) FROM chatbot_schema.usage_day_user) AS u`.execute(db);
      const c = counts.rows[0];
      const p30 = await medianMs(PAGE_RUNS, page('30d'));
      const pAll = await medianMs(PAGE_RUNS, page('all'));
      const seed = await medianMs(3, seedQueries);
      const g30 = await medianMs(PAGE_RUNS, page(`30d&group=${groupId}`));
      const gAll = await medianMs(PAGE_RUNS, page(`all&group=${groupId}`));
      rows.push({
        database: kind,
        data: label,
        messages: Number(c?.m).toLocaleString('en-US'),
        'rollup rows (day×model / day×user×model)': `${c?.d} / ${Number(c?.u).toLocaleString('en-US')}`,
        'load s': (fillMs / 1000).toFixed(1),
        'backfill s': (backfillMs / 1000).toFixed(1),
        'page 30d ms (median)': p30.toFixed(1),
        'page all ms (median)': pAll.toFixed(1),
        'seed SQL ms (median)': seed.toFixed(0),
        'seed / page all': (seed / pAll).toFixed(1),
        'group of 10,000: page 30d / all ms': `${g30.toFixed(1)} / ${gAll.toFixed(1)}`,
      });
    }

    // The group's limits would refuse the prompts below (and put the counters on their path): gone before them.
    await sql`DELETE FROM chatbot_schema.user_group WHERE idgroup = ${groupId}`.execute(db);
    // What the triggers add to a prompt and its answer: begin_answer then finalizeResponse, triggers on and off.
    const chat = await sql<{ idchat: number; idappuser: number }>`SELECT idchat, idappuser FROM chatbot_schema.chat ORDER BY idchat LIMIT 1`.execute(db);
    const target = chat.rows[0];
    if (!target) throw new Error('no chat');
    // Timed apart: begin_answer is on the time-to-first-token path, finalizeResponse after the answer is sent.
    const times = { begin: { on: [] as number[], off: [] as number[] }, finalize: { on: [] as number[], off: [] as number[] } };
    const turns = async (on: boolean) => {
      const key = on ? 'on' : 'off';
      for (let i = 0; i < 20; i++) {
        let t = performance.now();
        const r = await beginAnswer(db, { userId: target.idappuser, chatId: target.idchat, prompt: 'How fast?', maxActive: 1000 });
        times.begin[key].push(performance.now() - t);
        if (r.outcome !== 'ok') throw new Error(`begin_answer: ${r.outcome}`);
        t = performance.now();
        await finalizeResponse(db, r.responseId, { status: 'complete', markdown: 'x', html: '<p>x</p>', error: null, promptTokens: 5, completionTokens: 7 });
        times.finalize[key].push(performance.now() - t);
      }
    };
    const setTriggers = (on: boolean) =>
      sql`ALTER TABLE chatbot_schema.message ${sql.raw(on ? 'ENABLE' : 'DISABLE')} TRIGGER usage_message;
          ALTER TABLE chatbot_schema.response ${sql.raw(on ? 'ENABLE' : 'DISABLE')} TRIGGER usage_response`.execute(db);
    for (let round = 0; round < 10; round++) {
      for (const on of [true, false]) {
        await setTriggers(on);
        await turns(on);
      }
    }
    await setTriggers(true);
    for (const step of ['begin', 'finalize'] as const) {
      const on = median(times[step].on);
      const off = median(times[step].off);
      rows.push({
        database: kind,
        data: step === 'begin' ? 'begin_answer (median)' : 'finalizeResponse (median)',
        'page 30d ms (median)': `with rollups ${on.toFixed(2)} ms`,
        'page all ms (median)': `without ${off.toFixed(2)} ms`,
        'seed SQL ms (median)': `+${(on - off).toFixed(2)} ms`,
      });
    }
    await app.close();
  } finally {
    await database.close();
  }
  return rows;
}
