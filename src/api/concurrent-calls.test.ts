import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { type ChatWorld, startChatWorld, waitFor } from '../../test/chat-fixtures.ts';
import { testDbKind } from '../../test/database.ts';
import { rollupsByKey } from '../../test/rollups.ts';
import { rebuildUsageRollups } from '../db/migrations/011-usage-rollups.ts';
import { journalOf } from './call-journal.ts';

/**
 * Many streamed API calls of one key at once, through the app listening on a port (issue 18's burst, scaled to a
 * test): every one answered, and every one counted exactly once in the rollups — the slot rows (migration 030)
 * summed give what the api_call rows give, and what a recount gives. On PostgreSQL the admissions overlap on a pool
 * of connections; the rows are written in batches (src/api/call-journal.ts, tested on its own in call-journal.test.ts).
 */
const CALLS = 150;
let w: ChatWorld;
let url: string;
let key: string;

before(async () => {
  w = await startChatWorld();
  await w.t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = w.t.app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1/chat/completions`;
  await w.user.get('/settings/api-keys');
  const res = await w.user.postJson('/api/keys', { name: 'burst' });
  assert.equal(res.statusCode, 201, res.body);
  key = (res.json() as { key: string }).key;
});
after(async () => {
  w.t.app.server.closeAllConnections();
  await w.close();
});

async function streamedCall(i: number): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'Fake echo', stream: true, messages: [{ role: 'user', content: `call ${i} [[long:8]]` }] }),
  });
  return `${res.status} ${await res.text()}`;
}

test(`${CALLS} concurrent streamed calls of one key: all answered, each counted exactly once (contention only on PostgreSQL; running on ${testDbKind})`, async () => {
  const db = w.t.database.db;
  const answers = await Promise.all(Array.from({ length: CALLS }, (_, i) => streamedCall(i)));
  for (const a of answers) {
    assert.match(a, /^200 /, a.slice(0, 300));
    assert.match(a, /data: \[DONE\]/);
    assert.doesNotMatch(a, /"error"/);
  }
  // The end record is written just after [DONE] went out.
  await waitFor(async () => {
    await journalOf(db)?.flush(); // the journal writes the calls in batches
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.api_call WHERE txstatus = 'running'`.execute(db);
    return rows[0]?.n === 0 ? true : undefined;
  });

  const { rows } = await sql<{ calls: number; complete: number; pt: string; ct: string }>`
    SELECT count(*)::int AS calls, (count(*) FILTER (WHERE txstatus = 'complete'))::int AS complete,
      sum(nprompt_tokens)::text AS pt, sum(ncompletion_tokens)::text AS ct FROM chatbot_schema.api_call`.execute(db);
  const calls = rows[0];
  assert.equal(calls?.calls, CALLS);
  assert.equal(calls?.complete, CALLS);

  const kept = await rollupsByKey(db);
  const api = <T extends Record<string, unknown>>(list: T[]) => list.filter((r) => r.txsource === 'api');
  const sum = (list: Record<string, unknown>[], column: string) => list.reduce((n, r) => n + Number(r[column]), 0);
  for (const [table, list] of Object.entries(kept)) {
    const of = api(list);
    assert.equal(sum(of, 'nprompts'), CALLS, `${table}: one prompt per call`);
    assert.equal(sum(of, 'nresponses'), CALLS, `${table}: one answer per call`);
    assert.equal(sum(of, 'nprompt_tokens'), Number(calls?.pt), `${table}: prompt tokens`);
    assert.equal(sum(of, 'ncompletion_tokens'), Number(calls?.ct), `${table}: completion tokens`);
  }
  assert.equal(sum(api(kept.model), 'ncomplete'), CALLS);
  assert.equal(
    api(kept.model).reduce((n, r) => n + (r.hist_inf as number[]).reduce((a, b) => a + b, 0), 0),
    CALLS,
    'every call once in the timing histogram',
  );

  // No limit applies to this user: no counter row was written or locked (migration 031).
  const counters = await sql<{ n: number }>`SELECT count(*)::int AS n FROM chatbot_schema.usage_counter`.execute(db);
  assert.equal(counters.rows[0]?.n, 0);

  await rebuildUsageRollups(db, w.t.config.STATS_TIMEZONE);
  assert.deepEqual(await rollupsByKey(db), kept, 'a recount from the rows gives the same figures');
});
