import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { GenerationRegistry, shouldFlushText } from '../src/chat/generation.ts';
import { flushPartial } from '../src/chat/response-store.ts';
import type { Db } from '../src/db/database.ts';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { countFlushes } from '../test/flush-counter.ts';
import { type DbKind, openBenchDatabase, type Row } from './lib.ts';

/**
 * What saving the partial text of one long answer costs the database. A 100,000-character answer
 * (BENCH_FLUSH_CHARS) streamed at 250 characters a second (BENCH_FLUSH_CHARS_PER_S, about 60 tokens/s) lasts
 * 400 s: 400 flush ticks of one second. Both rules run here on the real flushPartial against the real database,
 * tick after tick without waiting (the database's work is what is measured, not the model's pace):
 * - before: every tick that saw new text rewrote the whole text so far (O(n²) bytes);
 * - after: the text is written once it has grown by FLUSH_GROWTH_FRACTION of what is stored (shouldFlushText),
 *   the other ticks write only the heartbeat.
 * Then the real path once: GenerationRegistry streaming the same length from the fake model server, its flush
 * interval shortened so the answer spans about as many ticks, bytes counted on the queries it sends.
 */

const CHARS = Number(process.env.BENCH_FLUSH_CHARS ?? 100_000);
const CHARS_PER_TICK = Number(process.env.BENCH_FLUSH_CHARS_PER_S ?? 250);
const TEXT = pseudoProse(CHARS);

/**
 * Words of random letters (a fixed seed, so every run writes the same text). PostgreSQL compresses what it stores
 * out of line: a repeated lorem ipsum would shrink to almost nothing and hide the cost a real answer has.
 */
function pseudoProse(chars: number): string {
  let seed = 42;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let text = '';
  while (text.length < chars) {
    const length = 2 + Math.floor(next() * 8);
    for (let i = 0; i < length; i++) text += String.fromCharCode(97 + Math.floor(next() * 26));
    text += next() < 0.08 ? '.\n\n' : ' ';
  }
  return text.slice(0, chars);
}

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

async function newResponse(db: Db): Promise<number> {
  const { idappuser } = await db
    .insertInto('chatbot_schema.app_user')
    .values({ txusername: `bench${Date.now()}${Math.random()}`, txemail: `b${Date.now()}${Math.random()}@example.com`, password: null })
    .returning('idappuser')
    .executeTakeFirstOrThrow();
  const { idllm } = await db
    .insertInto('chatbot_schema.llm')
    .values({ txshortname: `bench ${Math.random()}` })
    .returning('idllm')
    .executeTakeFirstOrThrow();
  const { idchat } = await db.insertInto('chatbot_schema.chat').values({ idappuser, idllm }).returning('idchat').executeTakeFirstOrThrow();
  const { idmessage } = await db.insertInto('chatbot_schema.message').values({ idchat, txmessage: 'bench' }).returning('idmessage').executeTakeFirstOrThrow();
  const { idresponse } = await db
    .insertInto('chatbot_schema.response')
    .values({ idchat, idmessage, idllm, txmarkdown: '', txcontent: '', txstatus: 'streaming', tinf_start: sql`now()`, dtheartbeat: sql`now()` })
    .returning('idresponse')
    .executeTakeFirstOrThrow();
  return idresponse;
}

/** WAL written so far. On PGlite the database is ours alone; a PostgreSQL server's WAL holds every database's writes. */
async function walBytes(db: Db): Promise<number> {
  const { rows } = await sql<{ bytes: number }>`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS bytes`.execute(db);
  return Number(rows[0]?.bytes ?? 0);
}

async function simulate(db: Db, kind: DbKind, rule: 'before' | 'after'): Promise<Row> {
  const id = await newResponse(db);
  const walBefore = await walBytes(db);
  let stored = 0;
  let flushes = 0;
  let sent = 0;
  let mostUnsaved = 0;
  let writeMs = 0;
  for (let length = CHARS_PER_TICK; length < CHARS + CHARS_PER_TICK; length += CHARS_PER_TICK) {
    const text = TEXT.slice(0, Math.min(length, CHARS));
    const unsaved = text.length - stored;
    const saveText = rule === 'before' ? unsaved > 0 : shouldFlushText(stored, unsaved);
    mostUnsaved = Math.max(mostUnsaved, saveText ? 0 : unsaved);
    const started = performance.now();
    await flushPartial(db, id, saveText ? text : null);
    writeMs += performance.now() - started;
    if (saveText) {
      flushes++;
      sent += Buffer.byteLength(text);
      stored = text.length;
    }
  }
  const wal = (await walBytes(db)) - walBefore;
  return {
    database: kind,
    rule: rule === 'before' ? 'before: whole text every tick' : 'after: on 25 % growth',
    answer: `${CHARS.toLocaleString('en')} chars, ${Math.ceil(CHARS / CHARS_PER_TICK)} ticks`,
    'text flushes': flushes,
    'text sent': mib(sent),
    'sent / answer': `${(sent / CHARS).toFixed(1)}×`,
    'WAL written': kind === 'pglite' ? mib(wal) : `${mib(wal)} (whole server)`,
    'time in flush writes': `${(writeMs / 1000).toFixed(2)} s`,
    'most unsaved (crash loss)': `${mostUnsaved.toLocaleString('en')} chars`,
  };
}

async function realPath(db: Db, kind: DbKind): Promise<Row> {
  const llm = await startFakeLlm();
  try {
    const counter = countFlushes();
    const registry = new GenerationRegistry({
      db: db.withPlugin(counter.plugin),
      log: pino({ level: 'silent' }) as unknown as FastifyBaseLogger,
      idleTimeoutMs: 30_000,
      maxAnswerChars: CHARS,
      maxAnswerMs: 600_000,
      flushIntervalMs: 40,
    });
    const id = await newResponse(db);
    const started = performance.now();
    const words = Math.ceil(CHARS / 5); // more than enough: MAX_ANSWER_CHARS cuts it at CHARS
    const generation = registry.start(id, { id: 0, name: 'fake', baseUrl: llm.baseUrl, apiKey: null, model: 'fake-echo' }, [
      { role: 'user', content: `[[long:${words}]]` },
    ]);
    await generation.finished;
    const seconds = (performance.now() - started) / 1000;
    return {
      database: kind,
      rule: 'after, real path (GenerationRegistry, 40 ms ticks)',
      answer: `${generation.text.length.toLocaleString('en')} chars, ~${Math.round((seconds * 1000) / 40)} ticks`,
      'text flushes': counter.flushes,
      'text sent': mib(counter.bytes),
      'sent / answer': `${(counter.bytes / generation.text.length).toFixed(1)}×`,
      'WAL written': '',
      'time in flush writes': `(answer ${seconds.toFixed(1)} s)`,
      'most unsaved (crash loss)': '',
    };
  } finally {
    await llm.close();
  }
}

export async function benchAnswerFlush(kind: DbKind): Promise<Row[]> {
  const database = await openBenchDatabase(kind);
  try {
    return [await simulate(database.db, kind, 'before'), await simulate(database.db, kind, 'after'), await realPath(database.db, kind)];
  } finally {
    await database.close();
  }
}
