import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import fc from 'fast-check';
import { type KyselyPlugin, sql } from 'kysely';
import pino from 'pino';
import { waitFor } from '../../test/chat-fixtures.ts';
import { openTestDatabase } from '../../test/database.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import type { OpenedDatabase } from '../db/database.ts';
import type { AdmittedCall, ApiCallEnd } from './api-call-queries.ts';
import { ApiCallJournal } from './call-journal.ts';

/**
 * Migration 033's statement-level fold of API calls, against the per-row fold chat's answers still use (019/030's
 * usage_add_prompt and usage_fold_answer), and the journal that writes the calls in batches (src/api/call-journal.ts).
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

/** The Db, counting the statements that write calls in a batch (a plugin sees every query, raw ones too). */
function countingWrites(): { db: OpenedDatabase['db']; writes: () => number } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      // The journal's statements: a write of starts (an INSERT), of ends (an UPDATE), or of both.
      if (/INSERT INTO chatbot_schema\.api_call |UPDATE chatbot_schema\.api_call a /.test(JSON.stringify(args.node))) n++;
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
  return { db: db().withPlugin(plugin), writes: () => n };
}

/** Calls as admitCompletion admits them without a limit: an id and a start from the database, no row yet. */
async function admittedCalls(count: number): Promise<AdmittedCall[]> {
  const { rows } = await sql<{ id: string; t0: string }>`
    SELECT nextval('chatbot_schema.api_call_idapicall_seq')::text AS id, now()::text AS t0 FROM generate_series(1, ${count})`.execute(db());
  return rows.map((r) => ({
    kind: 'admitted',
    userId: users[0] as number,
    keyId: 1,
    callId: r.id,
    reserved: false,
    unrecordedStart: r.t0,
    connection: { idllm: models[0] as number, txshortname: 'a', txbase_url: null, txapi_key_enc: null, txmodel: 'a', is_enabled: true },
  }));
}

const ended = (status: ApiCallEnd['status'], elapsedMs = 1500): ApiCallEnd => ({
  status,
  elapsedMs,
  firstTokenMs: 200,
  promptTokens: 10,
  completionTokens: 5,
  estimated: false,
  error: null,
});

async function assertCounted(calls: number, stopped: number): Promise<void> {
  const { rows } = await sql<{ final: number; inf: string }>`
    SELECT (count(*) FILTER (WHERE txstatus <> 'running'))::int AS final, min(EXTRACT(EPOCH FROM tinf_end - tinf_start))::text AS inf
    FROM chatbot_schema.api_call`.execute(db());
  assert.equal(rows[0]?.final, calls, 'every call final');
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
    stopped,
    'a caller gone counts as stopped',
  );
}

test('calls that end before their start is written are written whole in one statement; close writes what is queued', async () => {
  const counting = countingWrites();
  const journal = new ApiCallJournal(counting.db, pino({ level: 'silent' }));
  const calls = await admittedCalls(120);
  for (const c of calls) journal.begin(c);
  for (const [i, c] of calls.entries()) journal.end(c, ended(i % 2 ? 'complete' : 'client_gone'));
  // Before the write interval has passed: close() writes them now.
  await journal.close();
  assert.equal(counting.writes(), 1, 'one statement for all');
  await assertCounted(120, 60);
});

test('calls written as running, then ended: their ends are one UPDATE, each call counted once', async () => {
  const counting = countingWrites();
  const journal = new ApiCallJournal(counting.db, pino({ level: 'silent' }));
  const calls = await admittedCalls(50);
  for (const c of calls) journal.begin(c);
  await waitFor(async () => {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.api_call WHERE txstatus = 'running'`.execute(db());
    return rows[0]?.n === 50 ? true : undefined;
  });
  assert.equal((await rollupsByKey(db())).model.length, 0, 'a running call is not counted yet');
  for (const c of calls) journal.end(c, ended('complete'));
  await waitFor(async () => {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.api_call WHERE txstatus = 'complete'`.execute(db());
    return rows[0]?.n === 50 ? true : undefined;
  });
  assert.equal(counting.writes(), 2, 'the starts in one statement, the ends in another');
  await assertCounted(50, 0);
  await journal.close();
});

test('an end for a call the sweep ended already changes nothing', async () => {
  const journal = new ApiCallJournal(db(), pino({ level: 'silent' }));
  const [call] = await admittedCalls(1);
  assert.ok(call);
  journal.begin(call);
  await waitFor(async () => ((await db().selectFrom('chatbot_schema.api_call').select('idapicall').execute()).length === 1 ? true : undefined));
  await sql`UPDATE chatbot_schema.api_call SET txstatus = 'interrupted', tinf_end = now()`.execute(db());
  const before = await rollupsByKey(db());
  journal.end(call, ended('complete'));
  await journal.close();
  assert.deepEqual(await rollupsByKey(db()), before);
});

test('a write that fails is tried again with its calls, whose ends then go with their starts', async () => {
  let failures = 1;
  const failing: KyselyPlugin = {
    transformQuery(args) {
      if (failures > 0 && JSON.stringify(args.node).includes('INSERT INTO chatbot_schema.api_call')) {
        failures--;
        throw new Error('the database is away');
      }
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
  const journal = new ApiCallJournal(db().withPlugin(failing), log);
  const calls = await admittedCalls(10);
  for (const c of calls) journal.begin(c);
  // The first write (after the write interval) fails: its starts are queued again, and each end then goes with its start.
  await waitFor(async () => (failures === 0 ? true : undefined));
  for (const c of calls) journal.end(c, ended('complete'));
  await journal.close();
  assert.equal(failures, 0, 'the first write failed');
  assert.match(logged.join(''), /could not record API calls/);
  await assertCounted(10, 0);
});
