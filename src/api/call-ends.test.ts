import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import fc from 'fast-check';
import { type KyselyPlugin, sql } from 'kysely';
import pino from 'pino';
import { openTestDatabase } from '../../test/database.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import type { OpenedDatabase } from '../db/database.ts';
import { ApiCallEnds } from './call-ends.ts';

/**
 * Migration 033's statement-level fold of API calls, against the per-row fold chat's answers still use (019/030's
 * usage_add_prompt and usage_fold_answer), and the batched writer of call ends (src/api/call-ends.ts).
 */
let opened: OpenedDatabase;
let users: number[];
let models: number[];
const db = () => opened.db;

before(async () => {
  opened = await openTestDatabase();
  await sql`
    INSERT INTO chatbot_schema.llm (txshortname, txbase_url, txmodel) VALUES ('a', 'http://127.0.0.1:9/v1', 'a'), ('b', 'http://127.0.0.1:9/v1', 'b');
    INSERT INTO chatbot_schema.app_user (txusername, txemail, password) VALUES ('u1', 'u1@example.com', ''), ('u2', 'u2@example.com', '');`.execute(db());
  users = (await db().selectFrom('chatbot_schema.app_user').select('idappuser').orderBy('idappuser').execute()).map((r) => r.idappuser);
  models = (await db().selectFrom('chatbot_schema.llm').select('idllm').orderBy('idllm').execute()).map((r) => r.idllm);
});
after(() => opened.close());
beforeEach(async () => {
  await sql`DELETE FROM chatbot_schema.api_call; DELETE FROM chatbot_schema.usage_day_model; DELETE FROM chatbot_schema.usage_day_user;
    DELETE FROM chatbot_schema.usage_user_total;`.execute(db());
});

const finalStatuses = ['complete', 'error', 'client_gone', 'interrupted'] as const;
const callArb = fc.record({
  user: fc.nat(1),
  model: fc.nat(1),
  daysAgo: fc.nat(2),
  status: fc.constantFrom(...finalStatuses),
  // Milliseconds: inference spread over several histogram buckets, a first token or none, tokens or none.
  infMs: fc.option(fc.integer({ min: 0, max: 700_000 }), { nil: null }),
  ttftMs: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: null }),
  pt: fc.option(fc.nat(5000), { nil: null }),
  ct: fc.option(fc.nat(5000), { nil: null }),
});
type Call = typeof callArb extends fc.Arbitrary<infer T> ? T : never;

const start = (c: Call) => sql<Date>`date_trunc('hour', now()) - make_interval(days => ${c.daysAgo})`;
const at = (c: Call, ms: number | null) => (ms === null ? sql<null>`NULL` : sql<Date>`(${start(c)} + make_interval(secs => ${ms / 1000}))`);

/** The oracle: chat's per-row fold, writing the same call as source 'web' (delta 1 or -1). */
async function foldOneAsWeb(c: Call, delta: number): Promise<void> {
  const status = c.status === 'client_gone' ? 'stopped' : c.status;
  const user = users[c.user];
  const model = models[c.model];
  await sql`
    SELECT chatbot_schema.usage_add_prompt('web', ${user}::int, ${model}::int, chatbot_schema.usage_day(${start(c)}), ${start(c)}, ${delta}::int),
      chatbot_schema.usage_fold_answer('web', ${user}::int, ${model}::int, chatbot_schema.usage_day(${start(c)}), ${status}::text, ${start(c)},
        ${at(c, c.ttftMs)}, ${at(c, c.infMs)}, ${c.pt}::int, ${c.ct}::int, ${delta}::int)`.execute(db());
}

/** The API rows and the oracle's web rows of the rollups, each without its source, must be the same. */
async function assertApiEqualsWeb(): Promise<void> {
  const kept = await rollupsByKey(db());
  for (const [table, rows] of Object.entries(kept)) {
    const of = (source: string) => rows.filter((r) => r.txsource === source).map(({ txsource: _s, ...rest }) => rest);
    assert.deepEqual(of('api'), of('web'), `${table}: the statement fold equals the per-row fold`);
  }
}

test('final calls inserted many in a statement fold as the per-row fold does, every column', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(callArb, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }), async (batches) => {
      await sql`DELETE FROM chatbot_schema.usage_day_model; DELETE FROM chatbot_schema.usage_day_user; DELETE FROM chatbot_schema.usage_user_total;`.execute(
        db(),
      );
      for (const batch of batches) {
        await sql`
          INSERT INTO chatbot_schema.api_call (idappuser, idllm, txstatus, tinf_start, tfirst_token, tinf_end, nprompt_tokens, ncompletion_tokens)
          VALUES ${sql.join(batch.map((c) => sql`(${users[c.user]}, ${models[c.model]}, ${c.status}, ${start(c)}, ${at(c, c.ttftMs)}, ${at(c, c.infMs)}, ${c.pt}::int, ${c.ct}::int)`))}`.execute(
          db(),
        );
        for (const c of batch) await foldOneAsWeb(c, 1);
      }
      await assertApiEqualsWeb();
    }),
    { numRuns: 25 },
  );
});

test('an update of final calls takes the old rows back and adds the new ones; running rows count nothing until they end', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(callArb, callArb), { minLength: 1, maxLength: 10 }), async (pairs) => {
      await sql`DELETE FROM chatbot_schema.api_call; DELETE FROM chatbot_schema.usage_day_model; DELETE FROM chatbot_schema.usage_day_user;
        DELETE FROM chatbot_schema.usage_user_total;`.execute(db());
      // Started (running: nothing counted), then all ended in one UPDATE, then all corrected in another.
      const ids: string[] = [];
      for (const [c] of pairs) {
        const row = await db()
          .insertInto('chatbot_schema.api_call')
          .values({ idappuser: users[c.user] as number, idllm: models[c.model] as number, tinf_start: start(c) })
          .returning('idapicall')
          .executeTakeFirstOrThrow();
        ids.push(row.idapicall);
      }
      const counted = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.usage_day_model`.execute(db());
      assert.equal(counted.rows[0]?.n, 0, 'a running call is not in the statistics yet');
      const setAll = async (pick: (p: [Call, Call]) => Call) => {
        const values = pairs.map((p, i) => {
          const c = pick(p);
          return sql`(${ids[i]}::bigint, ${users[c.user]}::int, ${models[c.model]}::int, ${c.status}::text, ${start(c)}, ${at(c, c.ttftMs)}::timestamptz, ${at(c, c.infMs)}::timestamptz, ${c.pt}::int, ${c.ct}::int)`;
        });
        await sql`
          UPDATE chatbot_schema.api_call a SET idappuser = v.u, idllm = v.m, txstatus = v.s, tinf_start = v.t0, tfirst_token = v.t1, tinf_end = v.t2,
            nprompt_tokens = v.pt, ncompletion_tokens = v.ct
          FROM (VALUES ${sql.join(values)}) AS v(id, u, m, s, t0, t1, t2, pt, ct) WHERE a.idapicall = v.id`.execute(db());
      };
      await setAll(([first]) => first);
      await setAll(([, second]) => second);
      for (const [first, second] of pairs) {
        await foldOneAsWeb(first, 1);
        await foldOneAsWeb(first, -1);
        await foldOneAsWeb(second, 1);
      }
      await assertApiEqualsWeb();
    }),
    { numRuns: 20 },
  );
});

/** The Db, counting the statements that end calls in a batch (a plugin sees every query, raw ones too). */
function countingBatches(): { db: OpenedDatabase['db']; batches: () => number } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      if (args.node.kind === 'RawNode' && args.node.sqlFragments.join('').includes('WITH ended AS')) n++;
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
  return { db: db().withPlugin(plugin), batches: () => n };
}

test('ends recorded together are written in one statement, each counted once; close writes what is still queued', async () => {
  const calls = 120;
  const started = await sql<{ idapicall: string }>`
    INSERT INTO chatbot_schema.api_call (idappuser, idllm) SELECT ${users[0]}, ${models[0]} FROM generate_series(1, ${calls}) RETURNING idapicall`.execute(
    db(),
  );
  const counting = countingBatches();
  const ends = new ApiCallEnds(counting.db, pino({ level: 'silent' }));
  for (const [i, row] of started.rows.entries())
    ends.record(
      row.idapicall,
      { status: i % 2 ? 'complete' : 'client_gone', elapsedMs: 1500, firstTokenMs: 200, promptTokens: 10, completionTokens: 5, estimated: false, error: null },
      false,
    );
  // Before the linger has passed: close() writes them now.
  await ends.close();
  assert.equal(counting.batches(), 1, 'one statement for all');
  const { rows } = await sql<{ final: number; inf: string }>`
    SELECT (count(*) FILTER (WHERE txstatus <> 'running'))::int AS final, min(EXTRACT(EPOCH FROM tinf_end - tinf_start))::text AS inf
    FROM chatbot_schema.api_call`.execute(db());
  assert.equal(rows[0]?.final, calls);
  assert.equal(Number(rows[0]?.inf), 1.5, 'the end is the start plus the time measured in the process');
  const kept = await rollupsByKey(db());
  for (const [table, list] of Object.entries(kept)) {
    assert.equal(
      list.reduce((n, r) => n + Number(r.nprompts), 0),
      calls,
      `${table}: one prompt each`,
    );
    assert.equal(
      list.reduce((n, r) => n + Number(r.nresponses), 0),
      calls,
      `${table}: one answer each`,
    );
  }
  assert.equal(
    kept.model.reduce((n, r) => n + Number(r.nstopped), 0),
    calls / 2,
    'a caller gone counts as stopped',
  );
});

test('an end recorded for a call already ended (the sweep got there first) changes nothing', async () => {
  const row = await db()
    .insertInto('chatbot_schema.api_call')
    .values({ idappuser: users[0] as number, idllm: models[0] as number, txstatus: 'interrupted', tinf_end: sql<Date>`now()` })
    .returning('idapicall')
    .executeTakeFirstOrThrow();
  const before = await rollupsByKey(db());
  const ends = new ApiCallEnds(db(), pino({ level: 'silent' }));
  ends.record(
    row.idapicall,
    { status: 'complete', elapsedMs: 10, firstTokenMs: 1, promptTokens: 1, completionTokens: 1, estimated: false, error: null },
    false,
  );
  await ends.close();
  assert.deepEqual(await rollupsByKey(db()), before);
});
