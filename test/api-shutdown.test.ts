import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { interruptAbandonedApiCalls } from '../src/api/api-call-queries.ts';
import { startFakeLlm } from '../src/llm/fake-llm-server.ts';
import { waitFor } from './chat-fixtures.ts';
import { type Browser, type Place, placeForServer, postJsonOver, registerOver, type ServerProcess, spawnServer } from './server-process.ts';

/** A new user with an API key, and a streamed call of theirs that runs for a while (a word every 50 ms): its response. */
async function startLongApiStream(baseUrl: string, email: string): Promise<{ who: Browser; res: Response }> {
  const who = await registerOver(baseUrl, email);
  const created = await postJsonOver(baseUrl, who, '/api/keys', { name: 'script' });
  assert.equal(created.status, 201, await created.clone().text());
  const { key } = (await created.json()) as { key: string };
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-echo', stream: true, messages: [{ role: 'user', content: '[[slow:50]] [[long:400]]' }] }),
  });
  assert.equal(res.status, 200);
  return { who, res };
}

/** A server process relaying to the fake model server, and its database; both torn down however `run` ends. */
async function withApiServer(env: Record<string, string>, run: (server: ServerProcess, place: Place) => Promise<void>): Promise<void> {
  const llm = await startFakeLlm();
  const place = await placeForServer();
  try {
    const server = await spawnServer({ ...place.env, ...env, OPENAI_BASE_URL: llm.baseUrl, OPENAI_MODELS: 'fake-echo' });
    try {
      await run(server, place);
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  } finally {
    await place.cleanUp();
    await llm.close();
  }
}

// The real process: SIGTERM while an API stream runs past SHUTDOWN_GRACE_S ends it within the grace (plus the
// process's own exit), the caller reads an OpenAI `error` event before the stream closes, the call is `interrupted`.
test('SIGTERM with an API stream running past the grace: the stream ends with an error event, the call interrupted, exit 0', async () => {
  const graceS = 2;
  await withApiServer({ SHUTDOWN_GRACE_S: String(graceS) }, async (server, place) => {
    const { res } = await startLongApiStream(server.baseUrl, 'api-shutdown@example.com');
    let body = '';
    let signalledAt = 0;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        body += decoder.decode(chunk, { stream: true });
        if (signalledAt === 0 && body.includes('"content"')) {
          signalledAt = Date.now();
          server.child.kill('SIGTERM');
        }
      }
    } catch {
      // a connection cut: what arrived is judged below
    }
    const code = await server.exited;
    const elapsedMs = Date.now() - signalledAt;
    assert.equal(code, 0, server.output());
    assert.ok(elapsedMs >= graceS * 1000 - 100 && elapsedMs < (graceS + 2) * 1000, `exited after ${elapsedMs} ms`);
    const events = body.split('\n\n').filter((e) => e.startsWith('data: '));
    assert.match(events.at(-1) ?? '', /"code":"server_shutting_down"/, 'the last event says why the stream ends');
    const db = await place.open();
    try {
      const call = await db.db.selectFrom('chatbot_schema.api_call').select(['txstatus', 'tinf_end']).executeTakeFirstOrThrow();
      assert.equal(call.txstatus, 'interrupted');
      assert.ok(call.tinf_end);
    } finally {
      await db.close();
    }
  });
});

// The journal writes a call's start a few milliseconds after its admission (src/api/call-journal.ts). A process killed
// with the call running leaves that row 'running'; the sweep of the next process closes it interrupted, and only then
// is it in the statistics: once, prompt and answer together (migration 033).
test('kill -9 with an API stream running: the written start stays running until the sweep closes it interrupted, counted once', async () => {
  await withApiServer({}, async (server, place) => {
    const { who, res } = await startLongApiStream(server.baseUrl, 'api-kill@example.com');
    const reader = res.body?.getReader();
    assert.ok(reader);
    await reader.read(); // the stream has begun
    // The key's request count is read from api_call: 1 once the journal has written the start.
    await waitFor(async () => {
      const keys = (await (await fetch(`${server.baseUrl}/api/keys`, { headers: { cookie: who.cookie } })).json()) as Array<{ requests: number }>;
      return keys[0]?.requests === 1 ? true : undefined;
    });
    server.child.kill('SIGKILL');
    await server.exited;
    await reader.cancel().catch(() => undefined);

    const db = await place.open();
    try {
      const running = await db.db.selectFrom('chatbot_schema.api_call').select(['txstatus']).execute();
      assert.deepEqual(running, [{ txstatus: 'running' }]);
      const counted = () =>
        sql<{ p: string | null; i: string | null }>`
        SELECT sum(nprompts)::text AS p, sum(ninterrupted)::text AS i FROM chatbot_schema.usage_day_model WHERE txsource = 'api'`.execute(db.db);
      assert.deepEqual((await counted()).rows[0], { p: null, i: null }, 'a running call is not counted yet');
      // The next process's sweep, with the age it waits for (LLM_MAX_ANSWER_S and a minute) already passed.
      assert.equal(await interruptAbandonedApiCalls(db.db, 0), 1);
      assert.deepEqual((await counted()).rows[0], { p: '1', i: '1' }, 'counted once, as interrupted');
    } finally {
      await db.close();
    }
  });
});
