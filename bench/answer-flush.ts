import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { GenerationRegistry } from '../src/chat/generation.ts';
import { appendPartial, flushPartial } from '../src/chat/response-store.ts';
import type { Db } from '../src/db/database.ts';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { countFlushes } from '../test/flush-counter.ts';
import { type DbKind, median, openBenchDatabase, percentile, type Row } from './lib.ts';

/**
 * What saving the partial text of answers costs the database. A tick is one second of an answer streamed at
 * 250 characters a second (BENCH_FLUSH_CHARS_PER_S, about 60 tokens/s); every rule writes one UPDATE per tick
 * while text arrives (the heartbeat goes with it), and differs in the text that UPDATE carries:
 * - whole: the whole text so far, every tick (O(n²) bytes);
 * - growth (the rule before issue 17): the whole text once it has grown by a quarter of what is stored, else the
 *   heartbeat alone — O(n) bytes, but a crash loses up to a fifth of a long answer;
 * - append (now, src/chat/generation.ts): what arrived since the last tick, appended (appendPartial) — O(n) bytes
 *   sent, at most a tick lost; the database still rewrites the stored value (WAL).
 * Each rule runs on the real flushPartial / appendPartial against the real database, tick after tick without
 * waiting (the database's work is what is measured, not the model's pace):
 * 1. one 100,000-character answer (BENCH_FLUSH_CHARS: 400 ticks), alone;
 * 2. 200 answers at once (BENCH_FLUSH_ANSWERS) of 10,000 characters (BENCH_FLUSH_CONCURRENT_CHARS: 40 ticks),
 *    on a pool of the app's default size (10): the wall time to absorb them all, hence how many UPDATEs a second
 *    the database can take this way — 200 concurrent answers need 200 a second;
 * 3. the real path once: GenerationRegistry streaming 100,000 characters from the fake model server, its flush
 *    interval shortened so the answer spans many ticks, bytes counted on the queries it sends.
 */

const CHARS = Number(process.env.BENCH_FLUSH_CHARS ?? 100_000);
const CHARS_PER_TICK = Number(process.env.BENCH_FLUSH_CHARS_PER_S ?? 250);
const ANSWERS = Number(process.env.BENCH_FLUSH_ANSWERS ?? 200);
const CONCURRENT_CHARS = Number(process.env.BENCH_FLUSH_CONCURRENT_CHARS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_FLUSH_ROUNDS ?? 1);
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

type Rule = 'whole' | 'growth' | 'append';
const RULE_NAMES: Record<Rule, string> = {
  whole: 'whole text every tick',
  growth: 'before: whole text on 25 % growth',
  append: 'now: appended every tick',
};

/** One answer's saves under `rule`: what is stored, and what the saves cost. */
class Saver {
  stored = 0;
  storedBytes = 0;
  updates = 0;
  sent = 0;
  mostUnsaved = 0;
  readonly writeMs: number[] = [];
  readonly db: Db;
  readonly id: number;
  readonly rule: Rule;
  constructor(db: Db, id: number, rule: Rule) {
    this.db = db;
    this.id = id;
    this.rule = rule;
  }

  /** One tick that saw the text grow to `text`. */
  async tick(text: string): Promise<void> {
    const unsaved = text.length - this.stored;
    const saveText = this.rule !== 'growth' || unsaved >= 0.25 * this.stored;
    this.mostUnsaved = Math.max(this.mostUnsaved, saveText ? 0 : unsaved);
    const started = performance.now();
    if (!saveText) await flushPartial(this.db, this.id, null);
    else if (this.rule === 'append' && this.stored > 0) {
      const delta = text.slice(this.stored);
      if ((await appendPartial(this.db, this.id, delta, this.storedBytes)) === null) throw new Error('the append missed its length');
      this.sent += Buffer.byteLength(delta);
    } else {
      await flushPartial(this.db, this.id, text);
      this.sent += Buffer.byteLength(text);
    }
    this.writeMs.push(performance.now() - started);
    this.updates++;
    if (saveText) {
      this.stored = text.length;
      this.storedBytes = Buffer.byteLength(text);
    }
  }

  /** Every tick of an answer of `chars` characters, one after the other. */
  async answer(chars: number): Promise<void> {
    for (let length = CHARS_PER_TICK; length < chars + CHARS_PER_TICK; length += CHARS_PER_TICK) await this.tick(TEXT.slice(0, Math.min(length, chars)));
  }
}

const walLabel = (kind: DbKind, bytes: number) => (kind === 'pglite' ? mib(bytes) : `${mib(bytes)} (whole server)`);

async function oneLongAnswer(db: Db, kind: DbKind, rule: Rule): Promise<Row> {
  const saver = new Saver(db, await newResponse(db), rule);
  const walBefore = await walBytes(db);
  await saver.answer(CHARS);
  const wal = (await walBytes(db)) - walBefore;
  return {
    database: kind,
    run: 'one answer',
    rule: RULE_NAMES[rule],
    answers: `1 × ${CHARS.toLocaleString('en')} chars, ${saver.updates} ticks`,
    'text sent': mib(saver.sent),
    'sent / answer': `${(saver.sent / CHARS).toFixed(1)}×`,
    'WAL written': walLabel(kind, wal),
    'wall s': (saver.writeMs.reduce((a, b) => a + b, 0) / 1000).toFixed(2),
    'most unsaved (crash loss)': `${saver.mostUnsaved.toLocaleString('en')} chars`,
  };
}

interface ConcurrentRun {
  wallS: number;
  updates: number;
  sent: number;
  wal: number;
  writeMs: number[];
  mostUnsaved: number;
}

async function concurrentAnswers(db: Db, rule: Rule): Promise<ConcurrentRun> {
  const savers: Saver[] = [];
  for (let i = 0; i < ANSWERS; i++) savers.push(new Saver(db, await newResponse(db), rule));
  const walBefore = await walBytes(db);
  const started = performance.now();
  await Promise.all(savers.map((s) => s.answer(CONCURRENT_CHARS)));
  const wallS = (performance.now() - started) / 1000;
  return {
    wallS,
    wal: (await walBytes(db)) - walBefore,
    updates: savers.reduce((n, s) => n + s.updates, 0),
    sent: savers.reduce((n, s) => n + s.sent, 0),
    writeMs: savers.flatMap((s) => s.writeMs),
    mostUnsaved: Math.max(...savers.map((s) => s.mostUnsaved)),
  };
}

/** The rounds of one rule: medians of wall time and rate; bytes and WAL of the median round by wall time. */
function concurrentRow(kind: DbKind, rule: Rule, runs: ConcurrentRun[]): Row {
  const rates = runs.map((r) => r.updates / r.wallS);
  const typical = [...runs].sort((a, b) => a.wallS - b.wallS)[Math.floor(runs.length / 2)] as ConcurrentRun;
  const writeMs = runs.flatMap((r) => r.writeMs);
  return {
    database: kind,
    run: `${ANSWERS} at once${runs.length > 1 ? ` (median of ${runs.length})` : ''}`,
    rule: RULE_NAMES[rule],
    answers: `${ANSWERS} × ${CONCURRENT_CHARS.toLocaleString('en')} chars, ${typical.updates / ANSWERS} ticks`,
    'text sent': mib(typical.sent),
    'sent / answer': `${(typical.sent / (ANSWERS * CONCURRENT_CHARS)).toFixed(1)}×`,
    'WAL written': walLabel(kind, typical.wal),
    'wall s': median(runs.map((r) => r.wallS)).toFixed(2),
    'UPDATEs/s absorbed': Math.round(median(rates)),
    'share of the DB at 200 answers': `${((100 * ANSWERS) / median(rates)).toFixed(0)} %`,
    'UPDATE p50 / p99 ms': `${median(writeMs).toFixed(1)} / ${percentile(writeMs, 99).toFixed(1)}`,
    'most unsaved (crash loss)': `${typical.mostUnsaved.toLocaleString('en')} chars`,
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
      run: 'real path',
      rule: `${RULE_NAMES.append} (GenerationRegistry, 40 ms ticks)`,
      answers: `1 × ${generation.text.length.toLocaleString('en')} chars, ${counter.flushes} text saves`,
      'text sent': mib(counter.bytes),
      'sent / answer': `${(counter.bytes / generation.text.length).toFixed(1)}×`,
      'wall s': seconds.toFixed(1),
    };
  } finally {
    await llm.close();
  }
}

export async function benchAnswerFlush(kind: DbKind): Promise<Row[]> {
  const database = await openBenchDatabase(kind);
  const rules: Rule[] = ['whole', 'growth', 'append'];
  try {
    const rows: Row[] = [];
    for (const rule of rules) rows.push(await oneLongAnswer(database.db, kind, rule));
    const runs = new Map<Rule, ConcurrentRun[]>(rules.map((r) => [r, []]));
    for (let round = 0; round < ROUNDS; round++) for (const rule of rules) runs.get(rule)?.push(await concurrentAnswers(database.db, rule));
    for (const rule of rules) rows.push(concurrentRow(kind, rule, runs.get(rule) ?? []));
    rows.push(await realPath(database.db, kind));
    return rows;
  } finally {
    await database.close();
  }
}
