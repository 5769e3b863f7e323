import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createSession } from '../src/auth/sessions.ts';
import { searchBackfillJob } from '../src/chat/search-backfill.ts';
import type { Db } from '../src/db/database.ts';
import { type DbKind, median, percentile, type Row, startBenchApp } from './lib.ts';
import { cpuMeter } from './page-throughput.ts';
import { bulkLoad } from './page-world.ts';

/**
 * GET /api/chats?q= (issue 21: < 50 ms p95 on PostgreSQL for a user with 10,000 chats among 1,000,000 messages).
 * The world, in SQL with generate_series: one user with 10,000 chats and 90 others with 1,000 each, 10 answered
 * prompts a chat (1M prompts, 1M answers; PGlite, in memory: a tenth). Prompts are 8–12 words, answers 20–30,
 * titles 4, drawn from 5,000 made-up words with Zipf-like frequencies (word of rank r drawn with probability ∝ 1/r),
 * so the most common words are in every chat and the rarest in a few. The search rows are filled by the catch-up
 * job, as on an adopted database (its time is reported). Timed: app.inject of the whole request (session check,
 * query, JSON), 40 runs of each query after 3 of warm-up, for words of each frequency and each syntax.
 */
const SCALE = Number(process.env.SEARCH_BENCH_SCALE ?? 1);
const RUNS = Number(process.env.SEARCH_BENCH_RUNS ?? 40);
const VOCABULARY = 5_000;
const PROMPTS_PER_CHAT = 10;

const SYLLABLES = ['ka', 'lo', 'mi', 'nu', 'pe', 'ra', 'si', 'to', 'vu', 'ze', 'bar', 'del', 'fin', 'gor', 'hul', 'jen', 'kor', 'lim', 'mon', 'nir'];
/** Word of rank n (1 = most common): three syllables, so every word is distinct and looks like one. */
export const wordOfRank = (n: number) => `${SYLLABLES[n % 20]}${SYLLABLES[Math.floor(n / 20) % 20]}${SYLLABLES[Math.floor(n / 400) % 20]}`;

export interface SearchWorld {
  userId: number;
  otherUsers: number;
  chatsPerUser: number;
  userChats: number;
}

export async function fillSearchWorld(db: Db, world: SearchWorld): Promise<void> {
  const words = Array.from({ length: VOCABULARY }, (_, i) => wordOfRank(i + 1));
  // power(V, random()) is log-uniform on [1, V): rank r comes with probability ∝ 1/r.
  const text = (count: ReturnType<typeof sql>) =>
    sql`(SELECT string_agg((${words}::text[])[floor(power(${VOCABULARY}::float8, random()))::int], ' ') FROM generate_series(1, ${count}) k)`;
  await bulkLoad(db, async (trx) => {
    await sql`
      INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('Bench model', 'http://127.0.0.1:9/v1', 'bench')`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password)
      SELECT 'other' || i, 'other' || i || '@example.com', NULL FROM generate_series(1, ${world.otherUsers}::int) i`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.chat (idappuser, idllm, txtitle, dtcreated, dtupdated)
      SELECT u.idappuser, (SELECT max(idllm) FROM chatbot_schema.llm), ${text(sql`4 + 0 * g`)}, now() - g * interval '1 minute', now() - g * interval '1 minute'
      FROM chatbot_schema.app_user u
      CROSS JOIN LATERAL generate_series(1, CASE WHEN u.idappuser = ${world.userId} THEN ${world.userChats}::int ELSE ${world.chatsPerUser}::int END) g
      WHERE u.idappuser = ${world.userId} OR u.txusername LIKE 'other%'`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.message (idchat, txmessage, dtcreated)
      SELECT c.idchat, ${text(sql`8 + (c.idchat + g) % 5`)}, c.dtcreated + g * interval '1 second'
      FROM chatbot_schema.chat c CROSS JOIN generate_series(1, ${PROMPTS_PER_CHAT}::int) g`.execute(trx);
    await sql`
      INSERT INTO chatbot_schema.response (idchat, idmessage, idllm, txmarkdown, txcontent, txstatus, tinf_start, tinf_end)
      SELECT m.idchat, m.idmessage, (SELECT max(idllm) FROM chatbot_schema.llm), a.md, '<p>' || a.md || '</p>', 'complete', m.dtcreated, m.dtcreated
      FROM chatbot_schema.message m CROSS JOIN LATERAL (SELECT ${text(sql`20 + m.idmessage % 11`)} AS md) a`.execute(trx);
  });
  await sql`ANALYZE`.execute(db);
}

export async function benchSearch(kind: DbKind): Promise<Row[]> {
  const scale = kind === 'pglite' ? SCALE / 10 : SCALE;
  const bench = await startBenchApp(kind);
  try {
    const db = bench.database.db;
    const user = await sql<{ id: number }>`
      INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('searcher', 'searcher@example.com', NULL) RETURNING idappuser AS id`.execute(
      db,
    );
    const userId = user.rows[0]?.id as number;
    const world: SearchWorld = { userId, otherUsers: 90, chatsPerUser: Math.round(1000 * scale), userChats: Math.round(10_000 * scale) };
    const seedStarted = performance.now();
    await fillSearchWorld(db, world);
    const seedS = (performance.now() - seedStarted) / 1000;
    const fillStarted = performance.now();
    const job = searchBackfillJob(1000);
    while (await job.step(db)) {}
    await sql`VACUUM ANALYZE chatbot_schema.chat_search`.execute(db);
    const fillS = (performance.now() - fillStarted) / 1000;
    const counts = await sql<{ messages: number; mine: number }>`
      SELECT (SELECT count(*)::int FROM chatbot_schema.message) AS messages,
             (SELECT count(*)::int FROM chatbot_schema.chat WHERE idappuser = ${userId}) AS mine`.execute(db);
    const { messages, mine } = counts.rows[0] ?? { messages: 0, mine: 0 };

    const cookie = `parley_session=${await createSession(db, userId, {})}`;
    const w = wordOfRank;
    const cases: [string, string][] = [
      ['most common word (rank 1)', w(1)],
      ['common word (rank 10)', w(10)],
      ['rank 100', w(100)],
      ['rank 1,000', w(1000)],
      ['rare word (rank 4,000)', w(4000)],
      ['two words (ranks 5 and 300)', `${w(5)} ${w(300)}`],
      ['"phrase" (ranks 2, 3)', `"${w(2)} ${w(3)}"`],
      ['exclusion (rank 50 -rank 20)', `${w(50)} -${w(20)}`],
      ['or (ranks 3,000 or 3,500)', `${w(3000)} or ${w(3500)}`],
      ['a word nobody wrote', 'zzyzxquux'],
    ];
    const rows: Row[] = [];
    const all: number[] = [];
    // CPU per search, the app's thread and the database's backends: what a search costs on an idle machine, which
    // moves far less than wall time when neighbours load the machine (10 ms clock ticks: a mean over the runs).
    const meter = cpuMeter(kind, db);
    for (const [name, q] of cases) {
      const url = `/api/chats?q=${encodeURIComponent(q)}`;
      let results = 0;
      const get = async () => {
        const t0 = performance.now();
        const res = await bench.app.inject({ method: 'GET', url, headers: { cookie } });
        const ms = performance.now() - t0;
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        results = (res.json() as { results: unknown[] }).results.length;
        return ms;
      };
      for (let i = 0; i < 3; i++) await get();
      const times: number[] = [];
      const stop = await meter();
      for (let i = 0; i < RUNS; i++) times.push(await get());
      const cpu = await stop();
      all.push(...times);
      const matching = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM chatbot_schema.chat_search WHERE idappuser = ${userId} AND tsv @@ websearch_to_tsquery('simple', ${q})`.execute(db);
      rows.push({
        database: kind,
        query: name,
        'user’s chats matching': matching.rows[0]?.n ?? 0,
        results,
        'p50 ms': median(times).toFixed(1),
        'p95 ms': percentile(times, 95).toFixed(1),
        'CPU ms (app + db)': ((1000 * (cpu.server + cpu.database)) / RUNS).toFixed(1),
      });
    }
    rows.push({
      database: kind,
      query: '**all queries**',
      'user’s chats matching': '',
      results: '',
      'p50 ms': median(all).toFixed(1),
      'p95 ms': percentile(all, 95).toFixed(1),
    });
    rows.push({
      database: kind,
      query: `(world: ${messages.toLocaleString('en')} prompts, the user’s ${mine.toLocaleString('en')} chats; seeded in ${seedS.toFixed(0)} s, search rows filled by the catch-up job in ${fillS.toFixed(0)} s)`,
      'user’s chats matching': '',
      results: '',
      'p50 ms': '',
      'p95 ms': '',
    });
    return rows;
  } finally {
    await bench.close();
  }
}
